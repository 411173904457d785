"""Wall-clock time of `factgpt ask` with the shipped model, and of `factgpt --help`, start-up included.

Runs the command as a user would (a fresh process each time) and writes
results/bench/ask-latency.json (and .md) with every run's seconds, the median, the
answer, the device and the commit.

    python bench/ask_latency.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import torch

from factgpt.fileio import write_text_atomic
from factgpt.runinfo import device_name, git_commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--question", default="Where was Ralf Wadephul born?")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="results/bench/ask-latency.json")
    a = ap.parse_args()
    exe = shutil.which("factgpt")
    if exe is None:
        raise SystemExit("factgpt is not installed: pip install -e .")
    rows = []
    for cmd in ([exe, "ask", a.question], [exe, "--help"]):
        subprocess.run(cmd, check=True, capture_output=True)  # warm the file cache, as a second call would find it
        times, out = [], ""
        for _ in range(a.runs):
            t0 = time.perf_counter()
            r = subprocess.run(cmd, check=True, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            out = r.stdout.strip()
        rows.append({"command": "factgpt " + " ".join(json.dumps(x) if " " in x else x for x in cmd[1:]),
                     "seconds": times, "median_seconds": statistics.median(times),
                     "answer": out if cmd[1] == "ask" else ""})
    record = {**rows[0], "help": rows[1],
              "device": device_name(torch.device("cpu")), "torch": torch.__version__, "commit": git_commit(),
              "measured_by": "python bench/ask_latency.py" + (f" --runs {a.runs}" if a.runs != 5 else "")}
    answer = record["answer"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.out, json.dumps(record, indent=1) + "\n")
    short = record["commit"][:12] + ("-dirty" if record["commit"].endswith("-dirty") else "")
    md = (f"{record['device']} · torch {record['torch']} · commit `{short}` · `{record['measured_by']}`\n\n"
          f"| command | median wall-clock, start-up included | runs | answer |\n|---|---|---|---|\n"
          + "".join(f"| `{x['command']}` | {x['median_seconds']:.2f} s | {a.runs} | {x['answer'] or '–'} |\n"
                    for x in rows))
    write_text_atomic(Path(a.out).with_suffix(".md"), md)
    print(f"factgpt ask: median {record['median_seconds']:.2f} s over {a.runs} runs → {answer}")


if __name__ == "__main__":
    main()
