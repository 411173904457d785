"""`factgpt reproduce --recipe`: train and score every seed of a recipe; merge seeds run apart."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..batches import TensorExamples
from ..checkpoint import save_model
from ..datasets import NameDataset
from ..errors import InputError
from ..evaluate import accuracy, predict
from ..fileio import bundled_path, write_text_atomic
from ..heldout import split_heldout, to_tsv
from ..model import GPT
from ..pipeline import load_corpus, load_qa, model_config, stage_config, train_stage
from ..precision import resolve, resolve_device
from ..recite import recite, span_answers
from ..results import mean_std
from ..runinfo import device_name, git_commit
from ..study import run_folder
from ..evaluate import line_recall
from .diagnostics import recite_errors, training_lines
from .sources import recipe_source
from .spec import Recipe, RecipeSpec, load_recipe

def run_once(recipe: Recipe, seed: int, device: torch.device, quiet: bool = True,
             variant: str = "vanilla", heldout_n: int = 300) -> dict[str, Any]:
    """Pretrain and finetune one seed of a recipe; held-out and dev accuracy with the seconds of each stage."""
    corpus = load_corpus(bundled_path("wiki.txt"))
    vocab = corpus.vocab
    block = recipe.profile.model.block_size
    rows = load_qa(bundled_path("birth_places_train.tsv"), vocab, True, block)
    dev = load_qa(bundled_path("birth_dev.tsv"), vocab, True, block)
    ft_rows, held = split_heldout(rows, corpus.text, n=heldout_n, exclude={r.question for r in dev})
    n_docs = corpus.n_docs
    torch.manual_seed(seed)
    model = GPT(model_config(recipe.profile, vocab, variant))
    seconds: dict[str, float] = {}
    t0 = time.time()
    src = recipe_source(recipe, corpus.text, vocab, ft_rows, block)
    cfg = stage_config(recipe.profile, "pretrain", n_docs, seed=seed)
    pre, _ = train_stage(model, src, cfg, device, None, vocab, f"pretrain {recipe.name} seed {seed}", quiet)
    seconds["pretrain"] = time.time() - t0
    t0 = time.time()
    model, ft_loss = pre.model, None
    ft_epochs = recipe.profile.finetune_pretrained.max_epochs
    if ft_epochs is None or ft_epochs > 0:  # 0: mixed training has already taught the question format
        torch.manual_seed(seed)
        ft_src = TensorExamples(NameDataset(vocab, to_tsv(ft_rows), block))
        ft, _ = train_stage(pre.model, ft_src, stage_config(recipe.profile, "finetune_pretrained", n_docs, seed=seed),
                            device, None, vocab, f"finetune {recipe.name} seed {seed}", quiet)
        model, ft_loss = ft.model, ft.progress.history[-1]["loss"]
    seconds["finetune"] = time.time() - t0
    t0 = time.time()
    scores: dict[str, Any] = {}
    lines = training_lines(recipe, corpus.text)
    predictions: dict[str, list[tuple[str, str, str, str]]] = {}
    for name, part in (("heldout", held), ("dev", dev)):
        qs = [r.question for r in part]
        spec = recipe.spec
        if spec.recite:
            pairs = recite(model, vocab, qs, recipe.profile.data.max_chars or block)
            recs, free = [p.line.text for p in pairs], [p.answer.text for p in pairs]
            spans = span_answers(model, vocab, qs, recs, free)
            answers = spans if spec.span_answer else free
        else:
            recs, answers = [""] * len(qs), [p.text for p in predict(model, vocab, qs)]
        correct, total = accuracy(part, answers)
        scores[name] = {"correct": correct, "total": total, "accuracy": 100.0 * correct / total}
        if spec.recite:
            scores[name]["errors"] = recite_errors(part, lines, recs, answers)
            scores[name]["decodings"] = {k: 100.0 * accuracy(part, a)[0] / total
                                         for k, a in (("free", free), ("span", spans))}
        predictions[name] = [(r.question, r.answer, a, t) for r, a, t in zip(part, answers, recs)]
    scores["heldout_line_recall"] = line_recall(model, vocab, lines, held)
    seconds["evaluate"] = time.time() - t0
    seconds["total"] = sum(seconds.values())
    return {"seed": seed, **scores, "seconds": seconds,
            "final_loss": {"pretrain": pre.progress.history[-1]["loss"], "finetune": ft_loss},
            "parameters": model.num_params(), "_predictions": predictions,
            "_model": model, "_heldout": [r.question for r in held]}


def write_recipe_predictions(folder: Path, predictions: dict[str, list[tuple[str, str, str, str]]]) -> None:
    """question, gold answer, predicted answer and (recite recipes) the recitation, one TSV per part."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in predictions.items():
        body = "".join("\t".join(x.replace("\t", " ").replace("\n", " ") for x in row) + "\n" for row in rows)
        write_text_atomic(folder / f"{part}.predictions.tsv", "question\tanswer\tprediction\trecitation\n" + body)


def run_recipe(args) -> int:
    """`factgpt reproduce --recipe NAME`: every seed into one run folder: results.json, predictions, models."""
    commit = git_commit()
    recipe = load_recipe(args.recipe)
    device = resolve_device(args.device)
    folder = run_folder(args.out, f"recipe-{recipe.name}")
    say = lambda *a: print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)  # noqa: E731
    say(f"recipe {recipe.name} (track {recipe.spec.track}): {recipe.description}")
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        r = run_once(recipe, seed, device, quiet=args.quiet)
        write_recipe_predictions(folder / f"seed{seed}", r.pop("_predictions"))
        # The trained model, with what it needs to answer (cut, spec) and which
        # questions it never trained on (the held-out slice chooses thresholds).
        save_model(folder / f"seed{seed}" / "model.safetensors", r.pop("_model"), load_corpus(bundled_path("wiki.txt")).vocab,
                   {"recipe": recipe.name, "seed": seed, "max_chars": recipe.profile.data.max_chars,
                    "data": asdict(recipe.profile.data), "spec": recipe.spec.__dict__, "heldout_questions": r.pop("_heldout"), "commit": commit})
        runs.append(r)
        say(f"[seed {seed}] held-out {r['heldout']['accuracy']:.1f}%, dev {r['dev']['accuracy']:.1f}% "
            f"({r['seconds']['total'] / 60:.1f} min)")
        settings = recipe.to_dict()
        results = {"recipe": recipe.name, "track": recipe.spec.track, "description": recipe.description,
                   "settings": settings, "seeds": [x["seed"] for x in runs], "runs": runs,
                   "heldout": mean_std([x["heldout"]["accuracy"] for x in runs]),
                   "dev": mean_std([x["dev"]["accuracy"] for x in runs]),
                   "minutes": mean_std([x["seconds"]["total"] / 60 for x in runs]),
                   "parameters": runs[0]["parameters"],
                   "command": "factgpt " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:])),
                   "device": device_name(device), "torch": torch.__version__, "commit": commit,
                   "precision": resolve("auto", device, training=True)}  # what a recipe trains in
        if len(runs) < len(args.seeds):
            results["partial"] = True  # written after every seed: a stopped run keeps what it finished
        write_text_atomic(folder / "results.json", json.dumps(results, indent=2) + "\n")
    say(f"wrote {folder}/ (results.json, predictions and the model of each seed); the table of every recipe "
        f"under results/recipes/ is rendered by `factgpt table --readme README.md`")
    return 0


def merge_recipe_results(loaded: list[tuple[Path, dict[str, Any]]], out: Path) -> int:
    """`factgpt merge` of one recipe's seeds run apart: runs joined, means and spreads recomputed,
    prediction folders copied; writes out/results.json (out is usually results/recipes/NAME)."""
    names = {r.get("recipe") for _, r in loaded}
    if len(names) != 1 or None in names:
        raise InputError(loaded[0][0], f"results of different recipes (or of a recipe and a study) cannot be merged: "
                                       f"{sorted(map(str, names))}")
    seen: dict[int, Path] = {}
    for f, res in loaded:
        for s in res["seeds"]:
            if s in seen:
                raise InputError(f, f"seed {s} is also in {seen[s]}")
            seen[s] = f
    defaults = RecipeSpec().__dict__

    def essential(st: dict) -> str:  # a recipe option added since, at its default, changes nothing
        spec = {k: v for k, v in st.get("recipe", {}).items() if k == "track" or defaults.get(k, object()) != v}
        return json.dumps({**st, "recipe": spec}, sort_keys=True)

    settings = {essential(r["settings"]) for _, r in loaded}
    if len(settings) != 1:
        raise InputError(loaded[-1][0], "the runs were made with different settings of the recipe")
    runs = sorted((x for _, r in loaded for x in r["runs"]), key=lambda x: x["seed"])
    first = loaded[0][1]
    commits = [r["commit"] for _, r in loaded]
    merged = {**{k: v for k, v in first.items() if k not in ("partial",)},
              "seeds": sorted(seen), "runs": runs,
              "heldout": mean_std([x["heldout"]["accuracy"] for x in runs]),
              "dev": mean_std([x["dev"]["accuracy"] for x in runs]),
              "minutes": mean_std([x["seconds"]["total"] / 60 for x in runs]),
              "command": [r["command"] for _, r in loaded],
              "commit": commits[0] if len(set(commits)) == 1 else commits,
              "merged_from": [str(f) for f, _ in loaded]}
    if any(r.get("partial") for _, r in loaded):
        merged["partial"] = True
    out.mkdir(parents=True, exist_ok=True)
    for f, res in loaded:
        for s in res["seeds"]:
            src = f.parent / f"seed{s}"
            if src.is_dir() and src.resolve() != (out / f"seed{s}").resolve():
                shutil.copytree(src, out / f"seed{s}", dirs_exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps(merged, indent=2) + "\n")
    print(f"{merged['recipe']}: seeds {merged['seeds']}, held-out {merged['heldout']['mean']:.1f} ± "
          f"{merged['heldout']['std']:.1f}, dev {merged['dev']['mean']:.1f} ± {merged['dev']['std']:.1f}")
    return 0
