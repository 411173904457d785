"""`factgpt reproduce`: the whole study, every row and seed, measured and written down.

Rows: the London baseline; vanilla finetuned without pretraining; and, per
attention variant, pretrain → finetune. Each row is scored on the dev set
and writes its dev and test predictions. results.json keeps per-seed
accuracies, mean ± std, the wall-clock time of every stage, the device, the
torch version, the git commit and the command; a Markdown table and the
plots are rendered from it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .errors import InputError
from .evaluate import london, write_predictions
from .fileio import bundled_path, write_text_atomic
from .model import GPT
from .pipeline import (evaluate_rows, finetune_source, load_corpus, load_profile, load_qa, model_config,
                       pretrain_source, score, stage_config, train_stage)
from .precision import resolve, resolve_device

# The seed write-up's dev accuracies (course scale, GPU), shown beside ours.
REFERENCE = {"london": 5.0, "vanilla_nopretrain": 1.8, "vanilla_pretrain": 26.6, "synthesizer_pretrain": 7.0}
ROW_TITLES = {
    "london": "London baseline",
    "vanilla_nopretrain": "vanilla, no pretraining",
    "vanilla_pretrain": "vanilla, pretrain → finetune",
    "synthesizer_pretrain": "synthesizer, pretrain → finetune",
}


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        if sha.returncode == 0:
            return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} CPU, {torch.get_num_threads()} threads"


def estimate_pretrain_seconds(prof: dict, corpus, variant: str, device: torch.device, seed: int) -> float:
    """Time two optimizer steps of the profile's pretraining and extrapolate."""
    mcfg = model_config(prof, corpus.vocab, variant)
    n_docs = sum(1 for line in corpus.text.split("\n") if line)
    cfg = stage_config(prof, "pretrain", n_docs, seed=seed, max_epochs=1)
    from .train import Trainer

    tr = Trainer(GPT(mcfg), pretrain_source(corpus, mcfg.block_size, True, seed, prof.get("data", {}).get("max_chars")),
                 cfg, device)
    batches = tr.source.epoch(cfg.batch_size, tr.gen)
    tr.step(next(batches))  # warm-up
    t0 = time.time()
    tr.step(next(batches))
    tr.step(next(batches))
    per_step = (time.time() - t0) / 2
    return per_step * stage_config(prof, "pretrain", n_docs).max_epochs * tr.steps_per_epoch


def default_profile(device: torch.device) -> str:
    """The course's scale on a GPU; on a CPU the best profile that fits a sitting."""
    from .pipeline import profile_names

    if device.type == "cuda":
        return "course"
    return "laptop" if "laptop" in profile_names() else "smoke"


def reproduce(args) -> int:
    commit = git_commit()  # the code that runs, recorded before anything can change it
    device = resolve_device(args.device)
    profile_name = args.profile or default_profile(device)
    prof = load_profile(profile_name)
    name = prof["name"]
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(bundled_path("wiki.txt"))
    train_tsv = bundled_path("birth_places_train.tsv")
    dev_rows = load_qa(bundled_path("birth_dev.tsv"), corpus.vocab, False, prof["model"]["block_size"])
    test_rows = load_qa(bundled_path("birth_test_inputs.tsv"), corpus.vocab, False, prof["model"]["block_size"])
    n_docs = sum(1 for line in corpus.text.split("\n") if line)
    # --quiet hides the progress bars; these lines are the run's log.
    say = lambda *a: print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)  # noqa: E731
    say(f"profile {name}{'' if args.profile else ' (the default on this device; choose with --profile)'}: "
        f"{prof.get('description', '')}")
    say(f"device {device_name(device)}; seeds {args.seeds}; variants {args.variants}; writing {out}")

    est = estimate_pretrain_seconds(prof, corpus, "vanilla", device, args.seeds[0])
    total_est = est * len(args.variants) * len(args.seeds)
    say(f"estimated pretraining time: {est / 60:.1f} min per run, {total_est / 3600:.2f} h for all runs")
    if total_est > 3 * 3600 and device.type == "cpu" and not args.yes:
        if not sys.stdin.isatty():
            raise InputError("--profile", f"{name} would take about {total_est / 3600:.1f} h on this CPU; "
                                          "pass --yes to run it anyway, or --profile laptop")
        if input("continue? [y/N] ").strip().lower() != "y":
            return 1

    precision = resolve(args.precision, device)
    runs: dict[str, list[dict[str, Any]]] = {}

    def record(row: str, seed: int, preds_dev, preds_test, stages: dict[str, float], extra: dict | None = None):
        sd = out / f"seed{seed}"
        write_predictions(sd / f"{row}.dev.predictions", [p if isinstance(p, str) else p.text for p in preds_dev])
        write_predictions(sd / f"{row}.test.predictions", [p if isinstance(p, str) else p.text for p in preds_test])
        correct, total = score(dev_rows, [_P(p) for p in preds_dev])
        runs.setdefault(row, []).append({"seed": seed, "correct": correct, "total": total,
                                         "accuracy": 100.0 * correct / total, "seconds": stages, **(extra or {})})
        say(f"[seed {seed}] {ROW_TITLES[row]}: {correct}/{total} = {100.0 * correct / total:.1f}% "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in stages.items())})")
        write_results(partial=True)  # a run cut short keeps every row it finished

    def evaluate(model) -> tuple[list, list, float]:
        t0 = time.time()
        d = evaluate_rows(model, corpus.vocab, dev_rows, precision=precision)
        t = evaluate_rows(model, corpus.vocab, test_rows, precision=precision)
        return d, t, time.time() - t0

    def train(model, src, stage: str, seed: int, path: Path, tag: str):
        cfg = stage_config(prof, stage, n_docs, seed=seed, precision=args.precision)
        t0 = time.time()
        tr, _ = train_stage(model, src, cfg, device, path, corpus.vocab, f"{tag} seed {seed}", quiet=args.quiet)
        h = tr.progress.history
        say(f"[seed {seed}] {tag}: {tr.progress.step} steps in {time.time() - t0:.0f} s, "
            f"loss {h[0]['loss']:.3f} → {h[-1]['loss']:.3f}")
        return tr, time.time() - t0

    def write_results(partial: bool) -> dict:
        results = {
            "profile": name,
            "description": prof.get("description", ""),
            "profile_settings": prof,
            "command": "factgpt " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:])),
            "device": device_name(device),
            "precision": precision,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "commit": commit,
            "seeds": sorted({x["seed"] for r in runs.values() for x in r}) if partial else args.seeds,
            "reference": REFERENCE,
            "rows": {row: summarize(r) for row, r in runs.items()},
        }
        if partial:
            results["partial"] = True  # rewritten without this flag once every seed and row is done
        write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
        return results

    for seed in args.seeds:
        (out / f"seed{seed}").mkdir(exist_ok=True)
        record("london", seed, london(dev_rows), london(test_rows), {})

        torch.manual_seed(seed)
        model = GPT(model_config(prof, corpus.vocab, "vanilla"))
        tr, t_ft = train(model, finetune_source(corpus, train_tsv, model.config.block_size, True), "finetune_scratch",
                         seed, out / f"seed{seed}" / "vanilla.nopretrain.safetensors", "finetune (no pretraining)")
        d, t, t_ev = evaluate(tr.model)
        record("vanilla_nopretrain", seed, d, t, {"finetune": t_ft, "evaluate": t_ev},
               {"final_loss": {"finetune": tr.progress.history[-1]["loss"]}})

        for variant in args.variants:
            torch.manual_seed(seed)
            model = GPT(model_config(prof, corpus.vocab, variant))
            src = pretrain_source(corpus, model.config.block_size, True, seed, prof.get("data", {}).get("max_chars"))
            pre, t_pre = train(model, src, "pretrain", seed,
                               out / f"seed{seed}" / f"{variant}.pretrain.safetensors", f"pretrain {variant}")
            torch.manual_seed(seed)
            ft, t_ft = train(pre.model, finetune_source(corpus, train_tsv, model.config.block_size, True),
                             "finetune_pretrained", seed, out / f"seed{seed}" / f"{variant}.finetune.safetensors",
                             f"finetune {variant}")
            d, t, t_ev = evaluate(ft.model)
            record(f"{variant}_pretrain", seed, d, t, {"pretrain": t_pre, "finetune": t_ft, "evaluate": t_ev},
                   {"final_loss": {"pretrain": pre.progress.history[-1]["loss"],
                                   "finetune": ft.progress.history[-1]["loss"]}})

    results = write_results(partial=False)
    table = markdown_table(results)
    write_text_atomic(out / "table.md", table)
    from .plots import study_plots

    study_plots(out, results)
    print(table)
    return 0


class _P:
    """Adapter so that London's plain strings and Predictions score alike."""

    def __init__(self, p):
        self.text = p if isinstance(p, str) else p.text


def summarize(runs: list[dict]) -> dict:
    accs = [r["accuracy"] for r in runs]
    return {"runs": runs, "mean": statistics.fmean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}


def markdown_table(results: dict) -> str:
    seeds = results["seeds"]
    lines = [
        f"Profile `{results['profile']}` · {results['device']} · {results['precision']} · torch {results['torch']} · "
        f"commit {_commits(results['commit'])} · seeds {', '.join(map(str, seeds))}",
        "",
        "| row | dev accuracy (mean ± std) | per seed | seed write-up | minutes per seed (pretrain / finetune / evaluate) |",
        "|---|---|---|---|---|",
    ]
    for row, r in results["rows"].items():
        per = ", ".join(f"{x['accuracy']:.1f}" for x in r["runs"])
        if [x["seed"] for x in r["runs"]] != list(seeds):  # say which seeds a row that lacks some has
            per += f" (seed{'s' if len(r['runs']) > 1 else ''} {', '.join(str(x['seed']) for x in r['runs'])})"
        mins = []
        for stage in ("pretrain", "finetune", "evaluate"):
            v = [x["seconds"][stage] for x in r["runs"] if stage in x["seconds"]]
            mins.append(f"{statistics.fmean(v) / 60:.1f}" if v else "–")
        spread = f"± {r['std']:.1f}" if len(r["runs"]) > 1 else "(1 seed)"
        lines.append(f"| {ROW_TITLES.get(row, row)} | {r['mean']:.1f}% {spread} | {per} | "
                     f"{results['reference'].get(row, float('nan')):.1f}% | {' / '.join(mins)} |")
    if results.get("partial"):
        lines += ["", "Partial: some runs were stopped before every row was done; each row lists the seeds it has."]
    if results.get("disagreements"):
        diffs = "; ".join(f"{ROW_TITLES.get(d['row'], d['row'])} seed {d['seed']}: {d['kept']['correct']} kept, "
                          f"{d['dropped']['correct']} in another run" for d in results["disagreements"])
        lines += ["", f"Runs of the same seed on a GPU are not bitwise deterministic; where merged runs disagreed "
                      f"(correct answers), the first run is kept: {diffs}."]
    if results["profile"] == "smoke":
        lines += ["", "The smoke profile checks that the study runs; its small model and few epochs are not "
                      "expected to learn the facts, so its accuracies are not findings."]
    return "\n".join(lines) + "\n"


def _copy_if_new(src: str, dst: str) -> None:
    """The first source's files win, as its rows do when two sources hold the same (row, seed)."""
    import shutil

    if not Path(dst).exists():
        shutil.copy2(src, dst)


def _commits(commit: str | list[str]) -> str:
    """One commit, or the distinct commits of merged runs, shortened."""
    seen = dict.fromkeys(c[:12] for c in ([commit] if isinstance(commit, str) else commit))
    return ", ".join(f"`{c}`" for c in seen)


def _as_list(x: str | list[str]) -> list[str]:
    return x if isinstance(x, list) else [x]


def merge_results(paths: list[str], out: Path, keep_first: bool = False) -> int:
    """One study from runs made apart (e.g. one process per seed or variant on one GPU).

    Rows' per-seed runs are concatenated and summarised again (each run keeps the
    device and precision it ran on); a (row, seed) in two sources must agree and is kept once
    (the London baseline is in every run). CUDA kernels are not bitwise
    deterministic, so the same seed's no-pretraining row can differ by a question
    or two between GPU runs: `keep_first` keeps the first source's result and
    records every disagreement in the merged file instead of refusing. Each source's
    seed folders (predictions, loss logs) are copied beside the merged
    results.json so that the plots cover every seed.
    """
    import shutil

    loaded = []
    for f in map(Path, paths):
        try:
            res = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f, f"cannot read results JSON: {e}") from None
        if isinstance(res, dict) and {"recipe", "runs", "seeds"} <= res.keys():
            loaded.append((f, res))
            continue
        if not isinstance(res, dict) or not {"profile", "rows", "seeds"} <= res.keys():
            raise InputError(f, "not a results.json written by `factgpt reproduce`")
        loaded.append((f, res))
    if any("recipe" in r for _, r in loaded):
        from .recipes import merge_recipe_results

        return merge_recipe_results(loaded, out)
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
    table = markdown_table(merged)
    write_text_atomic(out / "table.md", table)
    from .plots import study_plots

    study_plots(out, merged)
    print(table)
    return 0


def render_tables(paths: list[str], readme: str | None) -> int:
    files = [Path(p) for p in paths] or sorted(Path("results").glob("*/results.json"))
    if not files:
        raise InputError("results", "no results/*/results.json to render")
    tables = {}
    bench = sorted(Path("results/bench").glob("*.md"))
    for f in files:
        try:
            res = json.loads(Path(f).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f, f"cannot read results JSON: {e}") from None
        if not isinstance(res, dict) or not {"profile", "rows", "seeds"} <= res.keys():
            if paths:
                raise InputError(f, "not a results.json written by `factgpt reproduce`")
            continue  # another command's results (e.g. results/explore)
        tables[res["profile"]] = markdown_table(res)
    if readme is None:
        for t in tables.values():
            print(t)
        return 0
    text = Path(readme).read_text(encoding="utf-8")
    blocks = {f"table:{name}": t for name, t in tables.items()}
    blocks["search:laptop"] = search_table(Path("results/laptop/search"))
    if Path("results/recipes").is_dir():
        from .recipes import write_recipe_table

        blocks["recipes"] = write_recipe_table(Path("results/recipes"))  # and its plot, from the results
    else:
        blocks["recipes"] = ""
    blocks["bench"] = "\n".join(f"`{p.as_posix()}`:\n\n{p.read_text(encoding='utf-8')}" for p in bench)
    for marker, body in blocks.items():
        text = _fill(text, marker, body)
    write_text_atomic(readme, text)
    # Which files the README's tables were rendered from: the provenance of every number in them.
    sources = sorted({*map(str, files), *map(str, Path("results/recipes").glob("*/results.json")),
                      *map(str, Path("results/laptop/search").glob("*.json")), *map(str, bench)})
    index = {"command": f"factgpt table --readme {readme}", "readme": str(readme), "sources": sources}
    if Path("results").is_dir():
        write_text_atomic(Path("results/index.json"), json.dumps(index, indent=2) + "\n")
    print(f"updated {readme} from {', '.join(map(str, files))}")
    return 0


def _fill(text: str, marker: str, body: str) -> str:
    """Replace what stands between `<!-- marker -->` and `<!-- /marker -->` (if both are there and body is not empty)."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if not body or start not in text or end not in text:
        return text
    a, rest = text.split(start, 1)
    _, b = rest.split(end, 1)
    return f"{a}{start}\n{body}{end}{b}"


def search_table(folder: Path) -> str:
    """The held-out search (bench/laptop_search.py and bench/laptop_probe.py files) as a Markdown table."""
    rows = []
    for f in sorted(folder.glob("*.json")):
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f, f"cannot read search results: {e}") from None
        if "probes" in r:  # held-out accuracy along one longer pretraining
            s = r["settings"]
            what = (f"lines ≤ {s['max_chars']} chars, batch {s['batch_size']}, lr {s['learning_rate']:g}, "
                    f"dropout {s['dropout']:g}, cosine over {s['epochs']} epochs")
            for p in r["probes"]:
                rows.append((f"`{r['name']}` after {p['epoch']} epochs", what, p["pretrain_minutes"],
                             p["pretrain_loss"], p["heldout_correct"], r["heldout"]))
        else:
            pre = r["profile"]["pretrain"]
            what = (f"lines ≤ {r['profile'].get('data', {}).get('max_chars')} chars, batch {pre['batch_size']}, "
                    f"lr {pre['learning_rate']:g}, {pre['max_epochs']} epochs")
            loss = r.get("pretrain_loss")
            rows.append((f"`{r['name']}`", what, (r["pretrain_seconds"] or 0) / 60, loss, r["heldout_correct"],
                         r["heldout"]))
    if not rows:
        return ""
    lines = ["| run | pretraining | pretrain minutes | pretrain loss | held-out accuracy |", "|---|---|---|---|---|"]
    for name, what, mins, loss, correct, total in rows:
        loss_s = "–" if loss is None else f"{loss:.2f}"
        lines.append(f"| {name} | {what} | {mins:.1f} | {loss_s} | {100.0 * correct / total:.1f}% ({correct}/{total}) |")
    return "\n".join(lines) + "\n"
