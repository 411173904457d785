"""`factgpt merge`: one record from runs of one experiment made apart.

A study run apart (one process per seed or per variant, several on one GPU) or a
recipe's seeds run on different machines each write their own results.json. Both
records are made of units, one result each: a study's (row, seed), a recipe's seed.
Merging is the same for both, and written once here:

  - the sources must be of one experiment (one profile; one recipe with the same
    settings), else one line and nothing written;
  - each unit is kept once; a unit in two sources must have the same outcome, or,
    with keep_first, the first source's is kept and the difference recorded under
    "disagreements" (CUDA kernels are not bitwise deterministic, so one seed can differ
    by a question between GPU runs);
  - every unit keeps the device and precision it ran on; the record's provenance
    lists every source's command and commit, and `merged_from` the sources;
  - the record is partial while some source is partial and a unit it planned is in
    no source, or (a study) a row lacks a seed;
  - each source's seed folders (predictions, loss logs) are copied beside the merged
    results.json, file by file, the first source's file winning.

What differs between the two kinds, the units and their summary, is in _Kind.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import InputError
from .fileio import write_text_atomic
from .recipes.spec import essential_settings
from .results import ROW_TITLES, is_recipe, is_study, mean_std, read_results, summarize

Key = tuple  # ("vanilla_pretrain", 0) for a study's unit, (0,) for a recipe's
Source = tuple[Path, dict[str, Any]]


@dataclass(frozen=True)
class _Kind:
    name: str
    units: Callable[[dict[str, Any]], Iterable[tuple[Key, dict[str, Any]]]]
    outcome: Callable[[dict[str, Any]], dict[str, Any]]  # what two copies of a unit must agree on
    describe: Callable[[Key], str]  # a unit in an error message
    key_fields: Callable[[Key], dict[str, Any]]  # a unit in the disagreements list
    check: Callable[[list[Source]], None]  # the sources are of one experiment
    summary: Callable[[list[tuple[Key, dict[str, Any]]]], dict[str, Any]]  # the record's fields from the units
    unit_fields: tuple[str, ...]  # the source's fields the summary replaces
    complete: Callable[[list[Source], list[Key]], bool]  # whether the merged units finish what was planned
    ignore: tuple[str, ...]  # files of a seed folder not copied


def _study_units(res: dict[str, Any]) -> Iterable[tuple[Key, dict[str, Any]]]:
    for row, r in res["rows"].items():
        for run in r["runs"]:
            yield (row, run["seed"]), run


def _check_study(loaded: list[Source]) -> None:
    profiles = {r["profile"] for _, r in loaded}
    if len(profiles) != 1:
        raise InputError(loaded[0][0], f"results of different profiles cannot be merged: {sorted(profiles)}")


def _study_summary(units: list[tuple[Key, dict[str, Any]]]) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for (row, _), run in units:
        rows.setdefault(row, []).append(run)
    return {"seeds": sorted({s for (_, s), _ in units}),
            "rows": {row: summarize(sorted(r, key=lambda x: x["seed"])) for row, r in rows.items()}}


def _study_complete(loaded: list[Source], keys: list[Key]) -> bool:
    seeds = {s for _, s in keys}
    rows: dict[str, set[int]] = {}
    for row, s in keys:
        rows.setdefault(row, set()).add(s)
    if any(v != seeds for v in rows.values()):
        return False  # a row lacks a seed
    # a stopped source may have left rows out that no other source ran
    return not any(r.get("partial") for _, r in loaded) or set(ROW_TITLES) <= set(rows)


def _check_recipe(loaded: list[Source]) -> None:
    names = {r.get("recipe") for _, r in loaded}
    if len(names) != 1:
        raise InputError(loaded[0][0], f"results of different recipes cannot be merged: {sorted(map(str, names))}")
    if len({essential_settings(r["settings"]) for _, r in loaded}) != 1:
        raise InputError(loaded[-1][0], "the runs were made with different settings of the recipe")


def _recipe_summary(units: list[tuple[Key, dict[str, Any]]]) -> dict[str, Any]:
    runs = sorted((run for _, run in units), key=lambda x: x["seed"])
    return {"seeds": [x["seed"] for x in runs], "runs": runs,
            "heldout": mean_std([x["heldout"]["accuracy"] for x in runs]),
            "dev": mean_std([x["dev"]["accuracy"] for x in runs]),
            "minutes": mean_std([x["seconds"]["total"] / 60 for x in runs])}


def _recipe_complete(loaded: list[Source], keys: list[Key]) -> bool:
    have = {s for (s,) in keys}
    return all(set(r.get("plan", {}).get("seeds", r["seeds"])) <= have for _, r in loaded if r.get("partial"))


KINDS = {
    "study": _Kind("study", _study_units, lambda run: {"correct": run.get("correct")},
                   lambda k: f"row {k[0]!r}, seed {k[1]}", lambda k: {"row": k[0], "seed": k[1]},
                   _check_study, _study_summary, ("rows", "seeds"), _study_complete,
                   ignore=("*.safetensors", "*.state")),  # checkpoints stay with their run
    "recipe": _Kind("recipe", lambda res: (((run["seed"],), run) for run in res["runs"]),
                    lambda run: {"dev": run["dev"].get("correct"), "heldout": run["heldout"].get("correct")},
                    lambda k: f"seed {k[0]}", lambda k: {"seed": k[0]},
                    _check_recipe, _recipe_summary, ("runs", "seeds", "heldout", "dev", "minutes"),
                    _recipe_complete, ignore=("*.state",)),  # a recipe's model is what `ask --model` reads
}


def _as_list(x: str | list[str]) -> list[str]:
    return x if isinstance(x, list) else [x]


def _joined(values: Iterable[Any]) -> str:
    return " + ".join(dict.fromkeys(p for v in values for p in str(v).split(" + ")))


def _copy_if_new(src: str, dst: str) -> None:
    if not Path(dst).exists():
        shutil.copy2(src, dst)


def merge_runs(paths: list[str | Path], out: Path, keep_first: bool = False) -> dict[str, Any]:
    """Merge the results.json files at `paths` into out/results.json (see the module's docstring);
    the merged record."""
    loaded = [(Path(f), read_results(f)) for f in paths]
    kinds = {"recipe" if is_recipe(r) else "study" if is_study(r) else "?" for _, r in loaded}
    if len(kinds) != 1:
        raise InputError(loaded[0][0], "a study's results and a recipe's cannot be merged")
    kind = KINDS[kinds.pop()]
    kind.check(loaded)
    kept: dict[Key, tuple[Path, dict[str, Any]]] = {}
    disagreements: list[dict[str, Any]] = []
    for f, res in loaded:
        for key, unit in kind.units(res):
            if key in kept:
                first_file, first = kept[key]
                if kind.outcome(first) != kind.outcome(unit):
                    if not keep_first:
                        raise InputError(f, f"{kind.describe(key)} is also in {first_file}, with another result "
                                            "(--keep_first keeps the first)")
                    disagreements.append({**kind.key_fields(key),
                                          "kept": {"file": str(first_file), **kind.outcome(first)},
                                          "dropped": {"file": str(f), **kind.outcome(unit)}})
                continue  # the same result twice (a study's London row is in every run): kept once
            kept[key] = (f, {"device": res.get("device"), "precision": res.get("precision"), **unit})
    units = [(k, u) for k, (_, u) in kept.items()]
    commits = list(dict.fromkeys(c for _, r in loaded for c in _as_list(r["commit"])))
    # the first source's description of the experiment; its own plan and pieces belong to it alone
    merged = {k: v for k, v in loaded[0][1].items() if k not in
              {"partial", "plan", "pieces", "command", "commit", "device", "precision", *kind.unit_fields}}
    merged.update({
        **kind.summary(units),
        "command": [c for _, r in loaded for c in _as_list(r["command"])],
        "commit": commits[0] if len(commits) == 1 else commits,
        "device": _joined(r.get("device") for _, r in loaded),
        "precision": _joined(r.get("precision") for _, r in loaded),
        "merged_from": [str(f) for f, _ in loaded],
    })
    if disagreements:
        merged["disagreements"] = disagreements
    if not kind.complete(loaded, list(kept)):
        merged["partial"] = True
    out.mkdir(parents=True, exist_ok=True)
    for f, res in loaded:
        for s in res["seeds"]:
            src, dst = f.parent / f"seed{s}", out / f"seed{s}"
            if src.is_dir() and src.resolve() != dst.resolve():
                shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=_copy_if_new,
                                ignore=shutil.ignore_patterns(*kind.ignore))
    write_text_atomic(out / "results.json", json.dumps(merged, indent=2) + "\n")
    return merged
