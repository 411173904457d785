"""Would a recite model answer more held-out people right by choosing among its line's pieces otherwise?

A recite recipe answers with the run of one to four words of its recited line that the model finds
most likely after ⁇ (recite.best_spans). Of its wrong held-out answers, a dozen a seed copy another
piece of a line that holds the right one. Two choices that need no retraining are measured here,
on the held-out slice only:

- first part: where the chosen span is the second part B of an "A, B" place in the recitation
  ("Wichita, Kansas"), answer A instead. In the training pairs (held-out slice left out) whose
  line holds the answer in such a pair, the answer is the first part far more often (counted
  below), so a model that copies B might be overruled. Read off the run's predictions, every seed.
- answer prior: each span's log-probability plus weight × log of how often it is a training
  pair's answer (add-one smoothed; the held-out slice left out), for a grid of weights. Needs
  the model (--model): every span of every recitation is scored again (recite.span_scores).

    python bench/piece_choice.py results/recipes/course_lm_recite_cf33_span96 --model factgpt/weights/recite.safetensors

Writes RUN/piece-choice.json with --model; without it the first-part rule is printed only, so that
a quick look does not replace a file that holds the prior's measurement.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

import torch

from factgpt.checkpoint import load_model
from factgpt.datasets import documents
from factgpt.experiment import DataBundle
from factgpt.fileio import write_text_atomic
from factgpt.heldout import name_of
from factgpt.people import line_name
from factgpt.recite import recite, span_scores
from factgpt.runinfo import device_name, git_commit

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
# the run of capitalised words just before ", B": "New York City, New York" gives "New York City"
_WORD = r"[A-Z][^\s,()]*"


def first_part(span: str, recitation: str) -> str | None:
    """A where `span` is the B of an "A, B" place in the recitation, else None."""
    if not span:
        return None
    m = re.search(rf"((?:{_WORD}\s)*{_WORD}), {re.escape(span)}(?!\w)", recitation)
    return m.group(1) if m else None


def pair_positions(data: DataBundle) -> dict[str, int]:
    """Of the training pairs (held-out slice left out) whose wiki.txt line holds the answer as one
    part of an "A, B" place: how many answer with the first part, how many with the second."""
    lines: dict[str, str] = {}
    for doc in documents(data.corpus.text):
        lines.setdefault(line_name(doc), doc)
    first = second = 0
    for r in data.finetune:
        line = lines.get(name_of(r.question) or "")
        if line is None:
            continue
        a = re.escape(r.answer)
        if re.search(rf"(?<!\w){a}, [A-Z]", line):
            first += 1
        elif re.search(rf"{_WORD}, {a}(?!\w)", line):
            second += 1
    return {"first_part": first, "second_part": second}


def first_part_rule(run: Path) -> list[dict]:
    seeds = []
    for f in sorted(run.glob("seed*/heldout.predictions.tsv")):
        with f.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        changed = [(r, first_part(r["prediction"], r["recitation"])) for r in rows]
        changed = [(r, a) for r, a in changed if a is not None]
        seeds.append({"seed": int(f.parent.name.removeprefix("seed")), "questions": len(rows),
                      "right_as_run": sum(r["prediction"] == r["answer"] for r in rows),
                      "right_with_rule": sum((first_part(r["prediction"], r["recitation"]) or r["prediction"])
                                             == r["answer"] for r in rows),
                      "changed": [[r["answer"], r["prediction"], a] for r, a in changed]})
    return seeds


def answer_prior(model_path: str, data: DataBundle) -> dict:
    model, meta = load_model(model_path, data.vocab)
    qs = [r.question for r in data.heldout]
    recs = [x.line.text for x in recite(model, data.vocab, qs, int(meta["max_chars"]), answers=False)]
    scores = span_scores(model, data.vocab, qs, recs)
    counts = Counter(r.answer for r in data.finetune)
    total, kinds = sum(counts.values()), len(counts)
    prior = lambda s: math.log((counts[s] + 1) / (total + kinds))  # noqa: E731
    by_weight = {}
    for w in WEIGHTS:
        right = 0
        for r, sc in zip(data.heldout, scores):
            if sc:
                right += max(sc, key=lambda s: sc[s] + w * prior(s)) == r.answer
        by_weight[str(w)] = right
    return {"model": model_path, "recipe": meta.get("recipe"), "seed": meta.get("seed"),
            "questions": len(qs), "right_by_weight": by_weight, "device": device_name(torch.device("cpu"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a recite recipe's results folder (seed*/heldout.predictions.tsv)")
    ap.add_argument("--model", help="one of its seeds' models, for the answer prior (scores every span again)")
    a = ap.parse_args()
    data = DataBundle.load(128)
    record = {"what": "held-out answers of a recite recipe under other choices among the recited line's pieces",
              "command": "python bench/piece_choice.py " + " ".join(sys.argv[1:]), "commit": git_commit(),
              "training_pairs_answering_a_place_pair": pair_positions(data),
              "first_part_rule": first_part_rule(a.run)}
    if a.model:
        record["answer_prior"] = answer_prior(a.model, data)
        write_text_atomic(a.run / "piece-choice.json", json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"training pairs answering with the first / second part of 'A, B': "
          f"{record['training_pairs_answering_a_place_pair']}")
    for s in record["first_part_rule"]:
        print(f"seed {s['seed']}: {s['right_as_run']} right as run, {s['right_with_rule']} with the first-part rule "
              f"({len(s['changed'])} answers changed)")
    if a.model:
        print(f"answer prior, seed {record['answer_prior']['seed']}: right by weight "
              f"{record['answer_prior']['right_by_weight']}")
    print(f"wrote {a.run / 'piece-choice.json'}" if a.model else "no --model: nothing written")


if __name__ == "__main__":
    main()
