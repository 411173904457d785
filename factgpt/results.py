"""The study's results: its rows, the seed write-up's numbers, the files a run leaves, and merging.

A study run (`factgpt reproduce`) writes results.json with one entry per row
and seed; a recipe run writes one with `recipe` and `runs`. This module knows
both shapes, the names of the rows and of their checkpoints, and joins
studies run apart (one process per seed, say) into one results.json.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

from .errors import InputError
from .fileio import write_text_atomic

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


def _copy_if_new(src: str, dst: str) -> None:
    """The first source's files win, as its rows do when two sources hold the same (row, seed)."""
    if not Path(dst).exists():
        shutil.copy2(src, dst)


def _as_list(x: str | list[str]) -> list[str]:
    return x if isinstance(x, list) else [x]


def merge_results(paths: list[str], out: Path, keep_first: bool = False) -> dict:
    """One study from runs made apart (e.g. one process per seed or variant on one GPU).

    Rows' per-seed runs are concatenated and summarised again (each run keeps the
    device and precision it ran on); a (row, seed) in two sources must agree and is kept once
    (the London baseline is in every run). CUDA kernels are not bitwise
    deterministic, so the same seed's no-pretraining row can differ by a question
    or two between GPU runs: `keep_first` keeps the first source's result and
    records every disagreement in the merged file instead of refusing. Each source's
    seed folders (predictions, loss logs) are copied beside the merged
    results.json so that the plots cover every seed; tables.write_study_outputs
    renders its table and plots.
    """
    loaded = [(Path(f), read_results(f)) for f in paths]
    if any(is_recipe(r) or not is_study(r) for _, r in loaded):
        raise InputError(paths[0], "not all of these are results of one study (merge a recipe's seeds apart)")
    profiles = {r["profile"] for _, r in loaded}
    if len(profiles) != 1:
        raise InputError(paths[0], f"results of different profiles cannot be merged: {sorted(profiles)}")
    first = loaded[0][1]
    runs: dict[str, list[dict]] = {}
    where: dict[tuple[str, int], Path] = {}
    disagreements: list[dict] = []
    for f, res in loaded:
        for row, r in res["rows"].items():
            for run in r["runs"]:
                key = (row, run["seed"])
                if key in where:
                    same = next(x for x in runs[row] if x["seed"] == run["seed"])
                    if same.get("correct") != run.get("correct"):
                        if not keep_first:
                            raise InputError(f, f"row {row!r}, seed {run['seed']} is also in {where[key]}, "
                                                "with another result (--keep_first keeps the first)")
                        disagreements.append({"row": row, "seed": run["seed"],
                                              "kept": {"file": str(where[key]), "correct": same.get("correct")},
                                              "dropped": {"file": str(f), "correct": run.get("correct")}})
                    continue  # a row that does not depend on the run (the London baseline): keep one
                where[key] = f
                runs.setdefault(row, []).append({"device": res.get("device"), "precision": res.get("precision"), **run})
    seen = sorted({s for _, res in loaded for s in res["seeds"]})
    precisions = sorted({p for _, r in loaded for p in str(r.get("precision")).split(" + ")})
    commits = list(dict.fromkeys(c for _, r in loaded for c in _as_list(r["commit"])))
    merged = {k: v for k, v in first.items() if k not in ("rows", "seeds", "command", "commit", "partial")}
    merged.update({
        "command": [c for _, r in loaded for c in _as_list(r["command"])],  # a merged source lists its own
        "commit": commits[0] if len(commits) == 1 else commits,
        "seeds": seen,
        "precision": " + ".join(precisions),
        "device": " + ".join(dict.fromkeys(d for _, r in loaded for d in str(r.get("device")).split(" + "))),
        "merged_from": [str(f) for f, _ in loaded],
        "rows": {row: summarize(sorted(r, key=lambda x: x["seed"])) for row, r in runs.items()},
    })
    if disagreements:
        merged["disagreements"] = disagreements
    # Still partial if a row lacks a seed, or a stopped source left a row out that no other source ran.
    lacking = any({x["seed"] for x in r} != set(seen) for r in runs.values())
    if lacking or (any(r.get("partial") for _, r in loaded) and not set(ROW_TITLES) <= set(runs)):
        merged["partial"] = True
    out.mkdir(parents=True, exist_ok=True)
    for f, res in loaded:
        for s in res["seeds"]:
            src, dst = f.parent / f"seed{s}", out / f"seed{s}"
            if src.is_dir() and src.resolve() != dst.resolve():
                shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=_copy_if_new,
                                ignore=shutil.ignore_patterns("*.safetensors", "*.state"))
    write_text_atomic(out / "results.json", json.dumps(merged, indent=2) + "\n")
    return merged
