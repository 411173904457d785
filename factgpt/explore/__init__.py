"""An executable exploration of softmax attention: each claim becomes code that
builds vectors, computes, and reports whether the claim holds.

    from factgpt.explore import run_exploration
    run_exploration(Path("results/explore"))   # or: python -m factgpt.explore
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from ..fileio import write_text_atomic
from . import claims, synth_task, writeup

__all__ = ["run"]


def run_exploration(out_dir: Path, seed: int = 0, quick: bool = False) -> list[dict]:
    """Run every check, print the table, write figures, report.md and results.json to out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with synth_task.one_thread():  # small tensors everywhere: extra threads only add hand-off cost
        # each check gets its own generator, so changing one leaves the others' numbers alone
        checks = [
            claims.check_copying,
            claims.check_averaging,
            claims.check_isotropic_noise,
            claims.check_rank_one_noise,
            claims.check_heads,
            claims.check_plain_qkv,
            claims.check_designed_qkv,
        ]
        rows = [check(torch.Generator().manual_seed(seed * 1000 + i)) for i, check in enumerate(checks)]
        rows.append(synth_task.check_synthesizer(seed, quick))
    figs = writeup.figures(rows, out_dir)
    write_text_atomic(out_dir / "report.md", writeup.markdown(rows, figs, seed, quick))
    writeup.write_json(rows, out_dir / "results.json", seed, quick)
    secs = rows[-1]["seconds"]
    _print(
        writeup.table(rows) + "\n\n"
        f"(g) training: key-query {secs['key-query']:.1f}s, synthesizer {secs['synthesizer']:.1f}s; "
        f"total {time.perf_counter() - t0:.1f}s. Wrote {out_dir / 'report.md'}, {len(figs)} figures, results.json.\n"
    )
    return rows


def _print(text: str) -> None:
    """The table uses Greek letters and sub/superscripts; degrade them on a non-UTF-8 terminal."""
    enc = getattr(sys.stdout, "encoding", None) or "utf-8"
    sys.stdout.write(text.encode(enc, "replace").decode(enc))
    sys.stdout.flush()
