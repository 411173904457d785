"""Copy a trained model into the package, as one of the models `factgpt ask` and `evaluate` use by name.

The weights are copied unchanged (so the shipped model gives exactly the run's
predictions); the metadata gains where they came from: the results folder, the
seed, the row or recipe, its accuracy and the commit that trained it; for a
study's model, how its profile cut and reordered the lines (`data`), so that
`ask` and `analyze` read them as it was trained on them even after the
profile changes; with --abstention, the rule `factgpt abstention` chose for it.

    python scripts/ship_model.py recite results/recipes/course_lm_recite_cf33_span96 --seed 0 --checkpoint PATH
    python scripts/ship_model.py recite results/recipes/course_lm_recite_cf33_span96 --seed 0 --checkpoint PATH \
        --abstention results/abstention/abstention.json

The recipes' checkpoints are not committed: PATH is seed0/model.safetensors of the run that
`factgpt reproduce --recipe NAME --seeds 0` writes.
    python scripts/ship_model.py quick results/quick --seed 0 --checkpoint PATH   # the checkpoints are not committed
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from factgpt.checkpoint import load_tensors, save_tensors
from factgpt.fileio import SHIPPED_MODELS

PACKAGE = Path(__file__).resolve().parent.parent / "factgpt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(SHIPPED_MODELS))
    ap.add_argument("results_dir", type=Path, help="a folder written by `factgpt reproduce` (a study or a recipe)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="the run's checkpoint, when it is not beside the results (default: seedK/ in results_dir)")
    ap.add_argument("--abstention", type=Path, default=None, help="abstention.json of `factgpt abstention` for this model")
    a = ap.parse_args()
    results = json.loads((a.results_dir / "results.json").read_text(encoding="utf-8"))
    if "recipe" in results:
        run = next(r for r in results["runs"] if r["seed"] == a.seed)
        src = a.results_dir / f"seed{a.seed}" / "model.safetensors"
        origin = {"recipe": results["recipe"], "dev_correct": run["dev"]["correct"], "dev_total": run["dev"]["total"],
                  "heldout_correct": run["heldout"]["correct"], "heldout_total": run["heldout"]["total"]}
    else:
        run = next(r for r in results["rows"]["vanilla_pretrain"]["runs"] if r["seed"] == a.seed)
        src = a.results_dir / f"seed{a.seed}" / "vanilla.finetune.safetensors"
        origin = {"row": "vanilla_pretrain", "profile": results["profile"], "dev_correct": run["correct"],
                  "dev_total": run["total"]}
    tensors, meta = load_tensors(a.checkpoint or src)
    if "rows" in results and "data" not in meta:
        meta["data"] = dict(results["profile_settings"].get("data") or {})
    meta["shipped_from"] = {"results": (a.results_dir / "results.json").as_posix(), "seed": a.seed, **origin,
                            "commit": results["commit"], "device": results["device"], "torch": results["torch"]}
    if a.abstention is not None:
        abst = json.loads(a.abstention.read_text(encoding="utf-8"))
        meta["abstention"] = {"thresholds": abst["rule"]["thresholds"], "chosen_by": abst["command"], "chosen_on": abst["selection"]["real"]
                              + f" ({abst['selection']['n_real']}) and {abst['selection']['n_made_up']} "
                              + abst["selection"]["made_up"], "results": a.abstention.as_posix()}
    dest = PACKAGE / SHIPPED_MODELS[a.name]
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(dest, tensors, meta)
    print(f"shipped {a.checkpoint or src} → {dest} ({dest.stat().st_size / 2**20:.1f} MiB; dev {origin['dev_correct']}/{origin['dev_total']}"
          + (f"; answers when {' and '.join(f'{k} >= {v:.4g}' for k, v in meta['abstention']['thresholds'].items())})"
             if a.abstention else ")"))


if __name__ == "__main__":
    main()
