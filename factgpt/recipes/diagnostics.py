"""What a recipe run measures besides accuracy: the lines it stores (line recall is
evaluate.line_recall) and where each wrong answer went wrong."""

from __future__ import annotations

from ..datasets import QA
from ..heldout import name_of
from ..lines import pretraining_lines
from .spec import Recipe


def training_lines(recipe: Recipe, corpus_text: str) -> dict[str, str]:
    """Each person's pretraining line as the recipe shows it (changed, then cut), by name."""
    return pretraining_lines(corpus_text, recipe.profile.data)


RECITE_ERRORS = ("correct", "answer_not_in_line", "line_not_recited", "copied_another_span", "garbled_copy")


def recite_errors(rows: list[QA], lines: dict[str, str], recitations: list[str], answers: list[str]) -> dict[str, int]:
    """Where a recite recipe's answers go wrong, one category per question:
    answer_not_in_line (the person's stored line does not hold the answer: copying cannot work),
    line_not_recited (it does, but the recitation lost it), copied_another_span (the answer
    is recited and a different piece of the recitation was copied) or garbled_copy (the
    answer is recited and what came out is in neither, e.g. "Shanghaha")."""
    counts = dict.fromkeys(RECITE_ERRORS, 0)
    for r, rec, ans in zip(rows, recitations, answers, strict=True):
        line = lines.get(name_of(r.question) or "", "")
        stored = line[len(r.question) + 1 :] if line.startswith(r.question + " ") else line
        if ans == r.answer:
            kind = "correct"
        elif r.answer not in stored:
            kind = "answer_not_in_line"
        elif r.answer not in rec:
            kind = "line_not_recited"
        elif ans and ans in rec:
            kind = "copied_another_span"
        else:
            kind = "garbled_copy"
        counts[kind] += 1
    return counts
