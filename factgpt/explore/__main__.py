"""python -m factgpt.explore [--out DIR] [--seed 0] [--quick]"""

import argparse

from ..fileio import run_folder
from . import run_exploration

if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m factgpt.explore", description="Check claims about softmax attention.")
    p.add_argument("--out", default=None, help="folder for report.md, figures, results.json (default: a new runs/explore-DATE-TIME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="shrink the learning experiment")
    a = p.parse_args()
    run_exploration(run_folder(a.out, "explore"), seed=a.seed, quick=a.quick)
