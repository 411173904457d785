"""A PNG of the top of the analysis report, for the README (headless Chromium).

    python scripts/report_screenshot.py [results/analysis/report.html] [results/analysis/report_top.png]

Chromium is not a Python dependency: install it first (Debian: apt-get install chromium).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    page = Path(sys.argv[1] if len(sys.argv) > 1 else "results/analysis/report.html")
    png = Path(sys.argv[2] if len(sys.argv) > 2 else "results/analysis/report_top.png")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium: not found (apt-get install chromium)", file=sys.stderr)
        return 2
    if not page.is_file():
        print(f"{page}: no such report (run factgpt analyze first)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as profile:
        tmp = png.with_name(png.name + ".tmp.png")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", f"--user-data-dir={profile}", "--window-size=1240,1500",
               f"--screenshot={tmp.resolve()}", page.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not tmp.is_file():
            print(f"{page}: chromium could not take the screenshot: {proc.stderr.strip()[-300:]}", file=sys.stderr)
            return 2
        tmp.replace(png)  # atomic: never a half-written PNG
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
