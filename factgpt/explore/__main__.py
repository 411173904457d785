"""python -m factgpt.explore [--out results/explore] [--seed 0] [--quick]"""

import argparse
from pathlib import Path

from . import run_exploration

if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m factgpt.explore", description="Check claims about softmax attention.")
    p.add_argument("--out", type=Path, default=Path("results/explore"), help="folder for report.md, figures, results.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="shrink the learning experiment")
    a = p.parse_args()
    run_exploration(a.out, seed=a.seed, quick=a.quick)
