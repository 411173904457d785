"""`factgpt reproduce --recipe`: train and score every seed of a recipe; merge seeds run apart."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import save_model
from ..errors import InputError
from ..evaluate import line_recall, predict
from ..experiment import FORMATS, HELDOUT_N, DataBundle, Score, command_line, finetune_on, provenance, unfinished_run
from ..fileio import run_folder, write_text_atomic
from ..grounded import answer_questions
from ..model import GPT
from ..pipeline import model_config, stage_config, train_stage
from ..precision import resolve, resolve_device
from ..results import mean_std
from ..runinfo import git_commit
from .diagnostics import recite_errors, training_lines
from .sources import recipe_source
from .spec import Recipe, essential_settings, load_recipe

def run_once(recipe: Recipe, seed: int, device: torch.device, quiet: bool = True,
             variant: str = "vanilla", heldout_n: int = HELDOUT_N, save_to: Path | None = None,
             meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pretrain and finetune one seed of a recipe; held-out and dev accuracy with the seconds of each stage.

    save_to: where the trained model goes (with meta and the held-out questions it never trained on),
    written before it is evaluated, so that an evaluation that fails keeps the training it followed."""
    data = DataBundle.load(recipe.profile.model.block_size, heldout_n)
    vocab, block = data.vocab, data.block_size
    torch.manual_seed(seed)
    model = GPT(model_config(recipe.profile, vocab, variant))
    seconds: dict[str, float] = {}
    t0 = time.time()
    src = recipe_source(recipe, data.corpus.text, vocab, data.finetune, block)
    cfg = stage_config(recipe.profile, "pretrain", data.corpus.n_docs, seed=seed)
    pre, _ = train_stage(model, src, cfg, device, None, vocab, f"pretrain {recipe.name} seed {seed}", quiet)
    seconds["pretrain"] = time.time() - t0
    t0 = time.time()
    model, ft_loss = pre.model, None
    ft_epochs = recipe.profile.finetune_pretrained.max_epochs
    if ft_epochs is None or ft_epochs > 0:  # 0: mixed training has already taught the question format
        ft = finetune_on(pre.model, data, recipe.profile, seed, device, f"finetune {recipe.name} seed {seed}", quiet)
        model, ft_loss = ft.model, ft.progress.history[-1]["loss"]
    seconds["finetune"] = time.time() - t0
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        save_model(save_to, model, vocab, {**(meta or {}), "heldout_questions": [r.question for r in data.heldout]})
    t0 = time.time()
    scores: dict[str, Any] = {}
    lines = training_lines(recipe, data.corpus.text)
    predictions: dict[str, list[tuple[str, str, str, str]]] = {}
    spec = recipe.spec
    for name, part in (("heldout", data.heldout), ("dev", data.dev)):
        qs = [r.question for r in part]
        if spec.recite:
            got = answer_questions(model, vocab, qs, recipe.profile.data.max_chars or block)
            recs, free = [a.recitation for a in got], [a.free_answer for a in got]
            spans = [a.guess for a in got]  # the span, or the free answer where the line has none
            answers = spans if spec.span_answer else free
        else:
            recs, answers = [""] * len(qs), [p.text for p in predict(model, vocab, qs)]
        scores[name] = Score.of(part, answers).to_json()
        if spec.recite:
            scores[name]["errors"] = recite_errors(part, lines, recs, answers)
            scores[name]["decodings"] = {k: Score.of(part, a).accuracy for k, a in (("free", free), ("span", spans))}
        predictions[name] = [(r.question, r.answer, a, t) for r, a, t in zip(part, answers, recs)]
    scores["heldout_line_recall"] = line_recall(model, vocab, lines, data.heldout)
    seconds["evaluate"] = time.time() - t0
    seconds["total"] = sum(seconds.values())
    return {"seed": seed, **scores, "seconds": seconds,
            "final_loss": {"pretrain": pre.progress.history[-1]["loss"], "finetune": ft_loss},
            "parameters": model.num_params(), "_predictions": predictions}


def write_recipe_predictions(folder: Path, predictions: dict[str, list[tuple[str, str, str, str]]]) -> None:
    """question, gold answer, predicted answer and (recite recipes) the recitation, one TSV per part."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in predictions.items():
        body = "".join("\t".join(x.replace("\t", " ").replace("\n", " ") for x in row) + "\n" for row in rows)
        write_text_atomic(folder / f"{part}.predictions.tsv", "question\tanswer\tprediction\trecitation\n" + body)


@dataclass(frozen=True)
class RecipeOptions:
    """What `factgpt reproduce --recipe` is asked to do (the command line parses into this)."""

    recipe: str  # a shipped name or a JSON file
    seeds: list[int] | None = None  # None: [0], or the resumed run's
    out: str | None = None  # None: a new runs/recipe-NAME-DATE-TIME
    resume: bool = False  # go on with the run in `out`: its finished seeds kept, the others run
    device: str = "auto"
    quiet: bool = False
    argv: tuple[str, ...] = ()


def _prior(opts: RecipeOptions, recipe: Recipe) -> dict[str, Any] | None:
    """With --resume, the run in --out (the same recipe's settings), else None."""
    if not opts.resume:
        return None
    path, prior = unfinished_run(opts.out)
    if prior.get("recipe") != recipe.name or essential_settings(prior.get("settings", {})) != essential_settings(recipe.to_dict()):
        raise InputError(path, f"this run is of another recipe or other settings than {recipe.name}'s now")
    return prior


def _commands(record: dict[str, Any]) -> list[str]:
    c = record["command"]
    return c if isinstance(c, list) else [c]


def run_recipe(opts: RecipeOptions) -> int:
    """`factgpt reproduce --recipe NAME`: every seed into one run folder: results.json, predictions, models.
    A seed runs in one piece; results.json is rewritten after each, and --resume runs the seeds left."""
    commit = git_commit()
    recipe = load_recipe(opts.recipe)
    device = resolve_device(opts.device)
    prior = _prior(opts, recipe)
    seeds = prior["plan"]["seeds"] if prior and "plan" in prior else (opts.seeds or [0])
    if prior and opts.seeds is not None and opts.seeds != seeds:
        raise InputError("--seeds", f"this run is of seeds {seeds}; resume it without --seeds or start a new --out")
    folder = run_folder(opts.out, f"recipe-{recipe.name}")
    say = lambda *a: print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)  # noqa: E731
    say(f"recipe {recipe.name} (track {recipe.spec.track}): {recipe.description}")
    runs: list[dict[str, Any]] = list(prior["runs"]) if prior else []
    commands = [*(_commands(prior) if prior else []), command_line(opts.argv)]
    for seed in seeds:
        if any(r["seed"] == seed for r in runs):
            say(f"[seed {seed}] done in an earlier piece")
            continue
        # The trained model, with what it needs to answer (cut, spec) and which
        # questions it never trained on (the held-out slice chooses thresholds).
        meta = {"recipe": recipe.name, "seed": seed, "max_chars": recipe.profile.data.max_chars,
                "data": asdict(recipe.profile.data), "spec": recipe.spec.__dict__, "commit": commit}
        r = run_once(recipe, seed, device, quiet=opts.quiet, save_to=folder / f"seed{seed}" / "model.safetensors",
                     meta=meta)
        write_recipe_predictions(folder / f"seed{seed}", r.pop("_predictions"))
        runs.append(r)
        runs.sort(key=lambda x: x["seed"])
        say(f"[seed {seed}] held-out {r['heldout']['accuracy']:.1f}%, dev {r['dev']['accuracy']:.1f}% "
            f"({r['seconds']['total'] / 60:.1f} min)")
        results = {"format": FORMATS["recipe"], "recipe": recipe.name, "track": recipe.spec.track,
                   "description": recipe.description, "settings": recipe.to_dict(),
                   "seeds": [x["seed"] for x in runs], "plan": {"seeds": seeds}, "runs": runs,
                   "heldout": mean_std([x["heldout"]["accuracy"] for x in runs]),
                   "dev": mean_std([x["dev"]["accuracy"] for x in runs]),
                   "minutes": mean_std([x["seconds"]["total"] / 60 for x in runs]),
                   "parameters": runs[0]["parameters"],
                   **provenance(device, commands[0] if len(commands) == 1 else commands,
                                (prior or {}).get("commit") or commit),
                   "precision": resolve("auto", device, training=True)}  # what a recipe trains in
        if len(runs) < len(seeds):
            results["partial"] = True  # written after every seed: a stopped run keeps what it finished
        write_text_atomic(folder / "results.json", json.dumps(results, indent=2) + "\n")
    say(f"wrote {folder}/ (results.json, predictions and the model of each seed); the table of every recipe "
        f"under results/recipes/ is rendered by `python scripts/render_docs.py README.md docs/*.md`")
    return 0
