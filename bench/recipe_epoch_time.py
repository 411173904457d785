"""What an epoch of a recipe's pretraining costs at each line length (max_chars), on this machine.

A recipe's pretraining draws from its own source (recipes/sources.py: lines, drills, questions);
a longer cut holds more of each line, and its birthplace more often, but every epoch costs more.
For each length the recipe's pretraining trainer is built as `factgpt reproduce --recipe` builds
it, a warm-up step runs, then the lengths take turns step by step (same seed, same batches a
length), so that the machine's drift falls on all alike; an epoch's cost is its median step
times its steps. Alongside: how many training people keep their birthplace in the cut line.

    python bench/recipe_epoch_time.py --recipe course_lm_recite_cf33_span --lengths 80 96 112 128
    python bench/recipe_epoch_time.py --recipe course_lm_recite_cf33_span course_lm_recite_cf33_span_nodates88 \
        --lengths 80 88

Several recipes take turns with each other too (every recipe at every length). Writes
results/recipes/epoch-time-<recipe>[+<recipe>...].json.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
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
    ap.add_argument("--recipe", nargs="+", default=["course_lm_recite_cf33_span"])
    ap.add_argument("--lengths", type=int, nargs="+", default=[80, 96, 112, 128])
    ap.add_argument("--steps", type=int, default=8, help="timed steps a length")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    bases = [load_recipe(r) for r in args.recipe]
    data = DataBundle.load(bases[0].profile.model.block_size)
    device = torch.device("cpu")
    trainers, batches, rows = {}, {}, {}
    for base in bases:
        for n in args.lengths:
            rec, key = at_length(base, n), (base.name, n)
            torch.manual_seed(0)
            model = GPT(model_config(rec.profile, data.vocab, "vanilla"))
            src = recipe_source(rec, data.corpus.text, data.vocab, data.finetune, data.block_size)
            cfg = stage_config(rec.profile, "pretrain", data.corpus.n_docs, seed=0)
            tr = Trainer(model, src, cfg, device)
            trainers[key], batches[key] = tr, tr.source.epoch(cfg.batch_size, tr.gen, cfg.shuffle)
            tr.step(next(batches[key]))  # warm-up
            lines = training_lines(rec, data.corpus.text)
            kept = sum(r.answer in lines.get(name_of(r.question) or "", "") for r in data.finetune)
            rows[key] = {"recipe": base.name, "max_chars": n, "data": asdict(rec.profile.data),
                         "epochs": base.profile.pretrain.max_epochs, "steps_an_epoch": tr.total_steps // cfg.max_epochs,
                         "ms_a_step": [], "training_people_with_birthplace_in_line": kept,
                         "training_people": len(data.finetune)}
    for _ in range(args.steps):  # every recipe and length takes its turn, step by step
        for key, tr in trainers.items():
            t0 = time.perf_counter()
            tr.step(next(batches[key]))
            tr.flush()
            rows[key]["ms_a_step"].append(1000 * (time.perf_counter() - t0))
    for r in rows.values():
        med = statistics.median(r["ms_a_step"])
        r |= {"median_ms_a_step": med, "seconds_an_epoch": med * r["steps_an_epoch"] / 1000,
              "minutes_for_the_recipes_epochs": med * r["steps_an_epoch"] * r["epochs"] / 60000}
        print(f"{r['recipe']} at max_chars {r['max_chars']}: {med:.0f} ms a step, {r['seconds_an_epoch']:.1f} s an "
              f"epoch, {r['minutes_for_the_recipes_epochs']:.1f} min for {r['epochs']} epochs; birthplace in the "
              f"line for {r['training_people_with_birthplace_in_line']} of {r['training_people']} training people",
              file=sys.stderr)
    out = Path(args.out or f"results/recipes/epoch-time-{'+'.join(b.name for b in bases)}.json")
    record = {"what": "cost of an epoch of the recipe's pretraining at each line length (fp32, recipes and lengths "
                      "alternating step by step), and how many training people keep their birthplace in the cut line",
              "recipe": bases[0].name if len(bases) == 1 else [b.name for b in bases],
              "epochs": bases[0].profile.pretrain.max_epochs, "timed_steps": args.steps,
              **provenance(device, "python bench/recipe_epoch_time.py " + " ".join(sys.argv[1:])),
              "precision": "fp32", "lengths": list(rows.values())}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
