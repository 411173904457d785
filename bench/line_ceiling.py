"""How many training people's pretraining lines still hold their birthplace after the cut?

A recite recipe can only copy an answer that its cut line holds, so this count bounds what any
recitation can answer. For each way of preparing the lines and each cut, it counts the training
pairs (held-out slice left out, people with a wiki.txt line) whose question-keyed line, cut to
that many characters, contains the answer; and how many lines do not name the answer anywhere.
Training pairs only: no held-out or dev answer is read.

The preparations: the birth clause from the first word "born" moved after the name (lines.
birth_front, what the recipes use), the same with the dates taken out first (lines.drop_dates), and
the clause that names a place moved instead (lines.placed_birth_front, data.birth_placed), with
and without dates.

    python bench/line_ceiling.py

Writes results/recipes/line-ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from factgpt.datasets import documents
from factgpt.experiment import DataBundle
from factgpt.fileio import write_text_atomic
from factgpt.heldout import name_of
from factgpt.lines import birth_front, drop_dates, placed_birth_front, question_key
from factgpt.people import line_name
from factgpt.runinfo import git_commit

CUTS = (80, 88, 96, 112)
PREPARATIONS: dict[str, Callable[[str], str]] = {
    "birth_front": birth_front,
    "placed_birth_front": placed_birth_front,
    "drop_dates+birth_front": lambda ln: birth_front(drop_dates(ln)),
    "drop_dates+placed_birth_front": lambda ln: placed_birth_front(drop_dates(ln)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/recipes/line-ceiling.json"))
    a = ap.parse_args()
    data = DataBundle.load(128)
    lines: dict[str, str] = {}
    for doc in documents(data.corpus.text):
        lines.setdefault(line_name(doc), doc)
    pairs = [(r, lines[n]) for r in data.finetune if (n := name_of(r.question)) in lines]
    counts = {name: {str(c): sum(r.answer in question_key(prep(ln))[:c] for r, ln in pairs) for c in CUTS}
              for name, prep in PREPARATIONS.items()}
    record = {"what": "training pairs whose question-keyed, prepared line cut to N characters holds the answer",
              "command": "python " + " ".join([sys.argv[0], *sys.argv[1:]]), "commit": git_commit(),
              "people": len(pairs), "answer_not_in_line": sum(r.answer not in ln for r, ln in pairs),
              "holds_answer": counts}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.out, json.dumps(record, indent=1) + "\n")
    print(f"{len(pairs)} training people; {record['answer_not_in_line']} lines never name the answer")
    for name, by_cut in counts.items():
        print(f"{name:32s} " + "  ".join(f"{c}: {n}" for c, n in by_cut.items()))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
