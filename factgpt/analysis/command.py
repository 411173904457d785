"""`factgpt analyze`: which checkpoints to analyse, and the command's arguments.

With --reading_params_path, those checkpoints (optionally named `ROW=PATH`).
Otherwise the models side by side: the shipped recite model first (the main
model), then the finetuned checkpoints `factgpt reproduce` wrote for one seed
beside --results (named PROFILE/ROW) or, without --results, the shipped quick
model, then the course profile's seed-0 checkpoints under results/course/seed0/
when they are there (the report names those it could not find).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..argtypes import positive_int
from ..errors import InputError
from ..fileio import run_folder, shipped_model
from ..results import ROW_FILES, ROW_TITLES



ROW_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")




def _row_for(path: Path) -> str:
    for row, name in ROW_FILES.items():
        if path.name == name:
            return row
    name = path.name
    for suffix in (".safetensors", ".params"):
        name = name.removesuffix(suffix)
    return name or "model"


def _study_seed(results: dict, path: Path, wanted: int | None) -> int:
    seeds = results.get("seeds") or []
    if wanted is not None:
        if wanted not in seeds:
            raise InputError(path, f"has no seed {wanted} (its seeds: {', '.join(map(str, seeds)) or 'none'})")
        return wanted
    if not seeds:
        raise InputError(path, "lists no seeds")
    return 0 if 0 in seeds else seeds[0]


def resolve_model_paths(paths: list[str] | None, results_json: str | Path | None,
                        study_seed: int | None = None) -> dict[str, Path]:
    """Row name → checkpoint, the main model first."""
    if paths:
        out: dict[str, Path] = {}
        for arg in paths:
            row, p = None, Path(arg)
            if "=" in arg and not p.exists():
                head, tail = arg.split("=", 1)
                if ROW_NAME.match(head):
                    row, p = head, Path(tail)
            if not p.is_file():
                raise InputError(p, "no such checkpoint file" if not p.exists() else "is not a file")
            row = row or _row_for(p)
            base, k = row, 2
            while row in out:
                row, k = f"{base}_{k}", k + 1
            out[row] = p
        return out
    if results_json is not None:
        from .run import load_results  # delayed: run imports torch and matplotlib; this module builds the CLI

        rj = Path(results_json)
        results = load_results(rj)
        seed = _study_seed(results, rj, study_seed)
        folder = rj.parent / f"seed{seed}"
        out = {f"{results['profile']}/{row}": folder / name for row, name in ROW_FILES.items() if (folder / name).is_file()}
        if not out:
            raise InputError(folder, f"no finetuned checkpoint ({', '.join(ROW_FILES.values())}); "
                                     "pass --reading_params_path CHECKPOINT")
        return out
    shipped = shipped_model("quick")
    if shipped is None:
        raise InputError("--reading_params_path",
                         "no model given and this installation ships none: pass "
                         "--reading_params_path CHECKPOINT or --results results/PROFILE/results.json")
    return {"quick/vanilla_pretrain": shipped}


COURSE_SEED0 = Path("results/course/seed0")


def default_models(results_json: str | Path | None, study_seed: int | None) -> tuple[dict[str, Path], list[dict]]:
    """The models compared by default, the main one first, and the ones missing (title, why)."""
    paths: dict[str, Path] = {}
    recite = shipped_model("recite")
    if recite is not None:
        paths["recite"] = recite
    paths.update(resolve_model_paths(None, results_json, study_seed))
    missing = []
    for row, name in ROW_FILES.items():
        if (COURSE_SEED0 / name).is_file():
            paths[f"course/{row}"] = COURSE_SEED0 / name
        else:
            missing.append({"row": f"course/{row}", "title": f"course profile: {ROW_TITLES[row]}",
                            "why": f"no {COURSE_SEED0 / name}: the course profile's GPU runs kept no checkpoints"})
    return paths, missing



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reading_params_path", nargs="+", metavar="[ROW=]PATH", default=None,
                   help="finetuned checkpoints to analyse, the first is the main model; ROW= names a study row "
                        "(default: the shipped recite model, the seed's checkpoints beside --results or the "
                        "shipped quick model, and results/course/seed0/ when present)")
    p.add_argument("--results", default=None, metavar="results/PROFILE/results.json",
                   help="the study's results.json: its table and curves go into the report, and its "
                        "checkpoints are analysed when no --reading_params_path is given")
    p.add_argument("--study_seed", type=int, default=None,
                   help="which seed's checkpoints to take from --results (default: 0, else the first seed)")
    p.add_argument("--out", default=None, help="folder for analysis.json, the figures and report.html "
                                             "(default: a new runs/analysis-DATE-TIME)")
    p.add_argument("--seed", type=int, default=0, help="seed of the unseen names and of the example draws")
    p.add_argument("--n_unseen", type=positive_int, default=500, help="how many unseen names to ask about")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace) -> int:
    """Run the analysis for parsed arguments; InputError propagates (the CLI prints it as one line)."""
    from ..precision import resolve_device
    from .run import run_analysis  # delayed: see resolve_model_paths

    if args.reading_params_path:
        paths, missing = resolve_model_paths(args.reading_params_path, args.results, args.study_seed), []
    else:
        paths, missing = default_models(args.results, args.study_seed)
    argv = getattr(args, "argv", None)
    out = run_folder(args.out, "analysis")
    analysis = run_analysis(paths, out, Path(args.results) if args.results else None, args.seed,
                            n_unseen=args.n_unseen, device=resolve_device(args.device),
                            command="factgpt " + " ".join(argv) if argv else None, quiet=args.quiet,
                            missing=missing)
    summary = {}
    for row in analysis["models"]:
        c, u = analysis["confidence"][row], analysis["unseen"]["rows"][row]
        h = analysis["hypothesis_c"]["rows"][row]
        summary[row] = {"dev_accuracy": c["accuracy"], "auroc_right_wrong": c["answer"]["auroc"],
                        "auroc_real_made_up": u["auroc_dev_vs_unseen"]["answer"],
                        "made_up_top1_share": u["top1_share"],
                        "nearest_by_spelling": h["spelling"]["verdict"], "nearest_by_state": h["model_state"]["verdict"]}
    print(json.dumps({"main": analysis["main"], "models": summary, "report": str(out / "report.html")},
                     indent=2, ensure_ascii=False))
    return 0
