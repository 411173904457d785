"""Would another answer score tell a recite model's right answers from its wrong ones better?

A recite model's abstention rule (abstention.py) sets a threshold on a line score ("is there a
stored line") and on an answer score ("is the answer read off it right"). The answer scores of
grounded.SCORES are absolute probabilities: how likely the model finds the chosen span after ⁇.
A span can be unlikely in absolute terms and still far ahead of the line's other pieces (the
model would rather write something the line does not hold), and a confident wrong piece ("Brisbane"
where the pair answers "Queensland") is ahead of its rival by less than a right one may be. So
this scores every span of each recitation again (recite.span_scores) and measures, on the held-out
slice and the selection's made-up names only (dev is not read), scores relative to the line's
other pieces:

- span_share: the chosen span's probability over the sum over every span of the recitation;
- span_margin: the chosen span's probability less the runner-up's;
- line_mean_x_span_share, line_mean_x_span_margin: each times the line's line_mean, as
  line_mean_x_span is the span's.

For each answer score (grounded.SCORES' and these): its held-out AUROC of right against wrong
answers, and what the best thresholds on it and on the rule's line score answer within the
abstention bounds (abstention.best_thresholds: at least 97% of the made-up names refused, at most
2% of the held-out people wrong).

    python bench/answer_scores.py results/abstention --model factgpt/weights/recite.safetensors

FOLDER is a `factgpt abstention` output (answers.jsonl) and --model the checkpoint that wrote it.
Writes FOLDER/answer-scores.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from factgpt.abstention import Record, best_thresholds, read_records, score_aurocs
from factgpt.checkpoint import load_model
from factgpt.experiment import DataBundle
from factgpt.fileio import write_text_atomic
from factgpt.grounded import LINE_SCORES, SCORES
from factgpt.recite import span_scores
from factgpt.runinfo import device_name, git_commit

PARTS = ("heldout", "select_made_up")  # what a rule is chosen on; dev stays unread
RELATIVE = ("span_share", "span_margin", "line_mean_x_span_share", "line_mean_x_span_margin")


def relative_scores(logps: dict[str, float], guess: str) -> dict[str, float] | None:
    """The guess's share of the probability of all spans, and its lead over the runner-up; None where
    the guess is not the most likely span (it was decoded freely, or scored apart by a float's width)."""
    if not logps:
        return None
    ranked = sorted(logps.values(), reverse=True)
    if guess not in logps or logps[guess] < ranked[0] - 1e-4:
        return None
    p = [math.exp(x) for x in ranked]
    return {"span_share": p[0] / sum(p), "span_margin": p[0] - (p[1] if len(p) > 1 else 0.0)}


def add_relative_scores(records: list[Record], model_path: str) -> dict[str, int]:
    """Score every span again and add RELATIVE to each record's scores (0 where there is no span to rank)."""
    data = DataBundle.load(128)
    model, _ = load_model(model_path, data.vocab)
    t0 = time.time()
    logps = span_scores(model, data.vocab, [r.question for r in records], [r.recitation for r in records])
    print(f"scored every span of {len(records)} recitations in {time.time() - t0:.0f} s", file=sys.stderr)
    unranked = 0
    for r, lp in zip(records, logps, strict=True):
        rel = relative_scores(lp, r.guess)
        if rel is None:
            unranked += 1
            rel = {"span_share": 0.0, "span_margin": 0.0}
        r.scores = {**r.scores, **rel, "line_mean_x_span_share": r.scores["line_mean"] * rel["span_share"],
                    "line_mean_x_span_margin": r.scores["line_mean"] * rel["span_margin"]}
    return {"records": len(records), "guess_not_the_best_span": unranked}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a `factgpt abstention` output folder (answers.jsonl)")
    ap.add_argument("--model", required=True, help="the checkpoint whose answers those are")
    a = ap.parse_args()
    records = [r for r in read_records(a.folder / "answers.jsonl") if r.part in PARTS]
    checked = add_relative_scores(records, a.model)
    real = [r for r in records if r.part == "heldout"]
    made_up = [r for r in records if r.part == "select_made_up"]
    names = (*SCORES, *RELATIVE)
    aucs = score_aurocs(real, made_up, names)
    line = max(LINE_SCORES, key=lambda k: (aucs[k]["real_vs_made_up"] or 0.0, k))
    rows = {}
    for k in names:
        th = best_thresholds(real, made_up, line, k)
        if th is None:
            rows[k] = {"auroc_right_vs_wrong": aucs[k]["right_vs_wrong"], "feasible": False}
            continue
        ans = [all(r.scores[s] >= t for s, t in th.items()) for r in real]
        refused = [not all(r.scores[s] >= t for s, t in th.items()) for r in made_up]
        rows[k] = {"auroc_right_vs_wrong": aucs[k]["right_vs_wrong"], "feasible": True, "thresholds": th,
                   "heldout_right": sum(x and r.guess == r.gold for x, r in zip(ans, real)),
                   "heldout_wrong": sum(x and r.guess != r.gold for x, r in zip(ans, real)),
                   "made_up_refused": sum(refused)}
    meta = json.loads((a.folder / "abstention.json").read_text(encoding="utf-8"))
    record = {"what": "answer scores of a recite model's abstention rule, relative ones added, on the held-out "
                      "slice and the selection's made-up names (dev not read)",
              "folder": str(a.folder), "model": a.model, "recipe": meta.get("recipe"), "seed": meta.get("seed"),
              "n_heldout": len(real), "n_made_up": len(made_up), "line_score": line, "checked": checked,
              "scores": rows, "command": "python bench/answer_scores.py " + " ".join(sys.argv[1:]),
              "commit": git_commit(), "device": device_name(torch.device("cpu"))}
    write_text_atomic(a.folder / "answer-scores.json", json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"line score {line}; held-out {len(real)}, made-up {len(made_up)}; {checked}")
    for k, r in rows.items():
        got = (f"{r['heldout_right']} right / {r['heldout_wrong']} wrong, {r['made_up_refused']} made-up refused"
               if r["feasible"] else "no thresholds within the bounds")
        print(f"{k:26s} AUROC {r['auroc_right_vs_wrong']:.3f}  {got}")
    print(f"wrote {a.folder / 'answer-scores.json'}")


if __name__ == "__main__":
    main()
