"""How many of a recite recipe's wrong answers name the other part of the right place.

A line often names a place in two parts ("Paris, France", "Coronation, Alberta"), and the
training pairs answer such people with one part or the other. A recite model that copies "Paris"
where the pair says "France" read the right place from the right line; the held-out accuracy
counts it wrong. For each seed's held-out answers (seed*/heldout.predictions.tsv of a recipe run)
this counts the wrong answers whose gold answer is in the recitation, and of those the ones where
the answer and the gold answer stand side by side as "A, B" in it (either order). Held-out only.

    python bench/place_parts.py results/recipes/course_lm_recite_cf33_span
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

from factgpt.fileio import write_text_atomic
from factgpt.runinfo import git_commit


def other_part(answer: str, gold: str, recitation: str) -> bool:
    """answer and gold are the two parts of one "A, B" place in the recitation."""
    if not answer or answer == gold:
        return False
    a, g = re.escape(answer), re.escape(gold)
    return bool(re.search(rf"(?<!\w){a},\s*{g}(?!\w)", recitation) or re.search(rf"(?<!\w){g},\s*{a}(?!\w)", recitation))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a recipe's results folder (seed*/heldout.predictions.tsv)")
    a = ap.parse_args()
    seeds = []
    for f in sorted(a.run.glob("seed*/heldout.predictions.tsv")):
        with f.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        wrong = [r for r in rows if r["prediction"] != r["answer"]]
        in_line = [r for r in wrong if r["answer"] in r["recitation"]]
        parts = [r for r in in_line if other_part(r["prediction"], r["answer"], r["recitation"])]
        seeds.append({"seed": int(f.parent.name.removeprefix("seed")), "questions": len(rows), "wrong": len(wrong),
                      "gold_in_recitation": len(in_line), "other_part_of_the_place": len(parts),
                      "examples": [[r["answer"], r["prediction"], r["recitation"]] for r in parts]})
    record = {"what": "wrong held-out answers that name the other part of the right place ('A, B' in the recitation)",
              "command": f"python bench/place_parts.py {a.run}", "commit": git_commit(), "seeds": seeds}
    write_text_atomic(a.run / "place-parts.json", json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    for s in seeds:
        print(f"seed {s['seed']}: {s['wrong']} wrong, {s['gold_in_recitation']} with the gold answer in the "
              f"recitation, {s['other_part_of_the_place']} the other part of the place")
    print(f"wrote {a.run / 'place-parts.json'}")


if __name__ == "__main__":
    main()
