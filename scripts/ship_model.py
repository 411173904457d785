"""Copy a study's trained model into the package, as the model `factgpt ask` and `evaluate` use by default.

The weights are copied unchanged (so the shipped model gives exactly the
study's predictions); the metadata gains where they came from: the results
folder, the seed, the row, its dev accuracy and the commit that trained it.

    python scripts/ship_model.py results/laptop --seed 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from factgpt.checkpoint import load_tensors, save_tensors
from factgpt.fileio import SHIPPED_MODEL

PACKAGE = Path(__file__).resolve().parent.parent / "factgpt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results_dir", type=Path, help="a folder written by `factgpt reproduce`")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    results = json.loads((a.results_dir / "results.json").read_text(encoding="utf-8"))
    run = next(r for r in results["rows"]["vanilla_pretrain"]["runs"] if r["seed"] == a.seed)
    src = a.results_dir / f"seed{a.seed}" / "vanilla.finetune.safetensors"
    tensors, meta = load_tensors(src)
    meta["shipped_from"] = {"results": (a.results_dir / "results.json").as_posix(), "seed": a.seed,
                            "row": "vanilla_pretrain", "profile": results["profile"],
                            "dev_correct": run["correct"], "dev_total": run["total"],
                            "commit": results["commit"], "device": results["device"], "torch": results["torch"]}
    dest = PACKAGE / SHIPPED_MODEL
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(dest, tensors, meta)
    print(f"shipped {src} → {dest} ({dest.stat().st_size / 2**20:.1f} MiB; dev {run['correct']}/{run['total']})")


if __name__ == "__main__":
    main()
