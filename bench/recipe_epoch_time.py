"""What an epoch of a recipe's pretraining costs at each line length (max_chars), on this machine.

A recipe's pretraining draws from its own source (recipes/sources.py: lines, drills, questions);
a longer cut holds more of each line, and its birthplace more often, but every epoch costs more.
For each length the recipe's pretraining trainer is built as `factgpt reproduce --recipe` builds
it, a warm-up step runs, then the lengths take turns step by step (same seed, same batches a
length), so that the machine's drift falls on all alike; an epoch's cost is its median step
times its steps. Alongside: how many training people keep their birthplace in the cut line.

    python bench/recipe_epoch_time.py --recipe course_lm_recite_cf33_span --lengths 80 96 112 128

Writes results/recipes/epoch-time-<recipe>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from factgpt.experiment import DataBundle, provenance
from factgpt.fileio import write_text_atomic
from factgpt.heldout import name_of
from factgpt.model import GPT
from factgpt.pipeline import model_config, stage_config
from factgpt.recipes import load_recipe, recipe_source, training_lines
from factgpt.recipes.spec import Recipe
from factgpt.train import Trainer


def at_length(recipe: Recipe, chars: int) -> Recipe:
    return Recipe(recipe.profile.with_settings(data={"max_chars": chars}), recipe.spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="course_lm_recite_cf33_span")
    ap.add_argument("--lengths", type=int, nargs="+", default=[80, 96, 112, 128])
    ap.add_argument("--steps", type=int, default=8, help="timed steps a length")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    base = load_recipe(args.recipe)
    data = DataBundle.load(base.profile.model.block_size)
    device = torch.device("cpu")
    trainers, batches, rows = {}, {}, {}
    for n in args.lengths:
        rec = at_length(base, n)
        torch.manual_seed(0)
        model = GPT(model_config(rec.profile, data.vocab, "vanilla"))
        src = recipe_source(rec, data.corpus.text, data.vocab, data.finetune, data.block_size)
        cfg = stage_config(rec.profile, "pretrain", data.corpus.n_docs, seed=0)
        tr = Trainer(model, src, cfg, device)
        trainers[n], batches[n] = tr, tr.source.epoch(cfg.batch_size, tr.gen, cfg.shuffle)
        tr.step(next(batches[n]))  # warm-up
        lines = training_lines(rec, data.corpus.text)
        kept = sum(r.answer in lines.get(name_of(r.question) or "", "") for r in data.finetune)
        rows[n] = {"max_chars": n, "steps_an_epoch": tr.total_steps // cfg.max_epochs, "ms_a_step": [],
                   "training_people_with_birthplace_in_line": kept, "training_people": len(data.finetune)}
    for _ in range(args.steps):  # lengths take turns, step by step
        for n, tr in trainers.items():
            t0 = time.perf_counter()
            tr.step(next(batches[n]))
            tr.flush()
            rows[n]["ms_a_step"].append(1000 * (time.perf_counter() - t0))
    for n, r in rows.items():
        med = statistics.median(r["ms_a_step"])
        r |= {"median_ms_a_step": med, "seconds_an_epoch": med * r["steps_an_epoch"] / 1000,
              "minutes_for_the_recipes_epochs": med * r["steps_an_epoch"] * base.profile.pretrain.max_epochs / 60000}
        print(f"max_chars {n}: {med:.0f} ms a step, {r['seconds_an_epoch']:.1f} s an epoch, "
              f"{r['minutes_for_the_recipes_epochs']:.1f} min for {base.profile.pretrain.max_epochs} epochs; "
              f"birthplace in the line for {r['training_people_with_birthplace_in_line']} of "
              f"{r['training_people']} training people", file=sys.stderr)
    out = Path(args.out or f"results/recipes/epoch-time-{base.name}.json")
    record = {"what": "cost of an epoch of the recipe's pretraining at each line length (fp32, lengths alternating "
                      "step by step), and how many training people keep their birthplace in the cut line",
              "recipe": base.name, "epochs": base.profile.pretrain.max_epochs, "timed_steps": args.steps,
              **provenance(device, "python bench/recipe_epoch_time.py " + " ".join(sys.argv[1:])),
              "precision": "fp32", "lengths": list(rows.values())}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
