"""The study's results: its rows, the seed write-up's numbers, the files a run leaves.

A study run (`factgpt reproduce`) writes results.json with one entry per row
and seed; a recipe run writes one with `recipe` and `runs`. This module knows
both shapes and the names of the rows and of their checkpoints; merge.py joins
runs made apart.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .errors import InputError

# The seed write-up's dev accuracies (course scale, GPU), shown beside ours.
REFERENCE = {"london": 5.0, "vanilla_nopretrain": 1.8, "vanilla_pretrain": 26.6, "synthesizer_pretrain": 7.0}
ROW_TITLES = {
    "london": "London baseline",
    "vanilla_nopretrain": "vanilla, no pretraining",
    "vanilla_pretrain": "vanilla, pretrain → finetune",
    "synthesizer_pretrain": "synthesizer, pretrain → finetune",
}

# The finetuned checkpoint of each study row, as `factgpt reproduce` names it in seed<k>/.
ROW_FILES = {
    "vanilla_pretrain": "vanilla.finetune.safetensors",
    "synthesizer_pretrain": "synthesizer.finetune.safetensors",
    "vanilla_nopretrain": "vanilla.nopretrain.safetensors",
}


def read_results(path: str | Path) -> dict[str, Any]:
    """A results.json of either shape; one line naming the file if it is not one."""
    f = Path(path)
    try:
        res = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f, f"cannot read results JSON: {e}") from None
    if not (is_study(res) or is_recipe(res)):
        raise InputError(f, "not a results.json written by `factgpt reproduce`")
    return res


def is_study(res: Any) -> bool:
    return isinstance(res, dict) and {"profile", "rows", "seeds"} <= res.keys()


def is_recipe(res: Any) -> bool:
    return isinstance(res, dict) and {"recipe", "runs", "seeds"} <= res.keys()


def summarize(runs: list[dict]) -> dict:
    accs = [r["accuracy"] for r in runs]
    return {"runs": runs, "mean": statistics.fmean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}


def mean_std(xs: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0}
