"""A fixed held-out slice of the training pairs, for choosing settings without dev.

The last `n` training pairs (in file order) whose person has a line in the
pretraining corpus are held out: finetuning uses the rest, and accuracy on
the slice says how well facts seen only in pretraining are extracted —
the dev set's question, answered without touching dev.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from .datasets import QA, documents
from .people import line_name

QUESTION_PREFIX, QUESTION_SUFFIX = "Where was ", " born?"


def name_of(question: str) -> str | None:
    if question.startswith(QUESTION_PREFIX) and question.endswith(QUESTION_SUFFIX):
        return question[len(QUESTION_PREFIX) : -len(QUESTION_SUFFIX)]
    return None


def corpus_names(corpus_text: str) -> set[str]:
    """The person of each line (people.line_name)."""
    return {line_name(doc) for doc in documents(corpus_text)}


def split_heldout(rows: list[QA], corpus_text: str, n: int = 300,
                  exclude: Iterable[str] = ()) -> tuple[list[QA], list[QA]]:
    """(rows to finetune on, held-out rows).

    A question asked more than once in the file (the training file repeats a
    few people) is never held out, so that the two parts share no question;
    nor is any question in `exclude` (pass the dev questions to keep the slice
    apart from dev: one training person is also a dev person).
    """
    names = corpus_names(corpus_text)
    seen = Counter(r.question for r in rows)
    skip = set(exclude)
    eligible = [i for i, r in enumerate(rows)
                if name_of(r.question) in names and seen[r.question] == 1 and r.question not in skip]
    if len(eligible) < n:
        raise ValueError(f"only {len(eligible)} training pairs have a corpus line; cannot hold out {n}")
    held = set(eligible[-n:])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def to_tsv(rows: list[QA]) -> str:
    return "".join(f"{r.question}\t{r.answer}\n" for r in rows)
