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
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .config import Profile
from .errors import InputError
from .evaluate import london, write_predictions
from .fileio import bundled_path, write_text_atomic
from .model import GPT
from .pipeline import (Corpus, evaluate_rows, finetune_stage, load_corpus, load_profile, load_qa, model_config, pretrain_source,
                       pretrain_stage, profile_names, score, stage_config)
from .precision import resolve, resolve_device
from .results import REFERENCE, ROW_TITLES, summarize
from .runinfo import device_name, git_commit
from .tables import write_study_outputs
from .train import Trainer


def estimate_pretrain_seconds(prof: Profile, corpus: Corpus, variant: str, device: torch.device, seed: int) -> float:
    """Time two optimizer steps of the profile's pretraining and extrapolate."""
    mcfg = model_config(prof, corpus.vocab, variant)
    cfg = stage_config(prof, "pretrain", corpus.n_docs, seed=seed, max_epochs=1)
    tr = Trainer(GPT(mcfg), pretrain_source(corpus, mcfg.block_size, True, seed, prof.data),
                 cfg, device)
    batches = tr.source.epoch(cfg.batch_size, tr.gen)
    tr.step(next(batches))  # warm-up
    t0 = time.time()
    tr.step(next(batches))
    tr.step(next(batches))
    per_step = (time.time() - t0) / 2
    return per_step * stage_config(prof, "pretrain", corpus.n_docs).max_epochs * tr.steps_per_epoch


def default_profile(device: torch.device) -> str:
    """The course's scale on a GPU; on a CPU the best profile that fits a sitting."""
    if device.type == "cuda":
        return "course"
    return "laptop" if "laptop" in profile_names() else "smoke"


def run_folder(out: str | None, name: str) -> Path:
    """--out, or a new folder runs/NAME-YYYYmmdd-HHMMSS: a run never writes over the committed results/."""
    if out is not None:
        return Path(out)
    base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    p, k = base, 1
    while p.exists():  # two runs started in the same second
        p, k = base.with_name(f"{base.name}-{k}"), k + 1
    return p


def reproduce(args) -> int:
    commit = git_commit()  # the code that runs, recorded before anything can change it
    device = resolve_device(args.device)
    profile_name = args.profile or default_profile(device)
    prof = load_profile(profile_name)
    name = prof.name
    out = run_folder(args.out, name)
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(bundled_path("wiki.txt"))
    train_tsv = bundled_path("birth_places_train.tsv")
    dev_rows = load_qa(bundled_path("birth_dev.tsv"), corpus.vocab, False, prof.model.block_size)
    test_rows = load_qa(bundled_path("birth_test_inputs.tsv"), corpus.vocab, False, prof.model.block_size)
    # --quiet hides the progress bars; these lines are the run's log.
    say = lambda *a: print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)  # noqa: E731
    say(f"profile {name}{'' if args.profile else ' (the default on this device; choose with --profile)'}: "
        f"{prof.description}")
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

    precision = resolve(args.precision, device)  # decoding's; training's is resolved per stage
    train_precision = resolve(args.precision, device, training=True)
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

    def train(stage, seed: int, tag: str, *where, path: Path, **kw):
        """One stage (pipeline.pretrain_stage or finetune_stage) of one seed, timed and logged."""
        t0 = time.time()
        tr, _ = stage(prof, corpus, *where, device, path, f"{tag} seed {seed}", quiet=args.quiet,
                      train_overrides={"seed": seed, "precision": args.precision}, **kw)
        h = tr.progress.history
        say(f"[seed {seed}] {tag}: {tr.progress.step} steps in {time.time() - t0:.0f} s, "
            f"loss {h[0]['loss']:.3f} → {h[-1]['loss']:.3f}")
        return tr, time.time() - t0

    def write_results(partial: bool) -> dict:
        results = {
            "profile": name,
            "description": prof.description,
            "profile_settings": prof.to_dict(),
            "command": "factgpt " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:])),
            "device": device_name(device),
            "precision": train_precision,  # the training's (decoding runs in `precision`)
            "decode_precision": precision,
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

        tr, t_ft = train(finetune_stage, seed, "finetune (no pretraining)", train_tsv, "vanilla",
                         path=out / f"seed{seed}" / "vanilla.nopretrain.safetensors")
        d, t, t_ev = evaluate(tr.model)
        record("vanilla_nopretrain", seed, d, t, {"finetune": t_ft, "evaluate": t_ev},
               {"final_loss": {"finetune": tr.progress.history[-1]["loss"]}})

        for variant in args.variants:
            pre, t_pre = train(pretrain_stage, seed, f"pretrain {variant}", variant,
                               path=out / f"seed{seed}" / f"{variant}.pretrain.safetensors")
            ft, t_ft = train(finetune_stage, seed, f"finetune {variant}", train_tsv, variant, model=pre.model,
                             path=out / f"seed{seed}" / f"{variant}.finetune.safetensors")
            d, t, t_ev = evaluate(ft.model)
            record(f"{variant}_pretrain", seed, d, t, {"pretrain": t_pre, "finetune": t_ft, "evaluate": t_ev},
                   {"final_loss": {"pretrain": pre.progress.history[-1]["loss"],
                                   "finetune": ft.progress.history[-1]["loss"]}})

    results = write_results(partial=False)
    print(write_study_outputs(out, results))
    say(f"wrote {out}/ (results.json, table.md, plots, predictions and checkpoints per seed)")
    return 0


class _P:
    """Adapter so that London's plain strings and Predictions score alike."""

    def __init__(self, p):
        self.text = p if isinstance(p, str) else p.text


