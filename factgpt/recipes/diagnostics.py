"""What a recipe run measures besides accuracy: whether the lines are stored (line recall)
and where each wrong answer went wrong."""

from __future__ import annotations

from typing import Any

import torch

from ..datasets import QA, documents
from ..evaluate import decode_batch
from ..heldout import name_of
from ..model import GPT
from ..people import line_name
from ..vocab import Vocab
from .augment import augment_text
from .spec import Recipe

def training_lines(recipe: Recipe, corpus_text: str) -> dict[str, str]:
    """Each person's pretraining line as the recipe shows it (augmented, then cut), by name."""
    max_chars = recipe.profile.data.max_chars
    out = {}
    for before, after in zip(documents(corpus_text), documents(augment_text(corpus_text, recipe.spec))):
        out.setdefault(line_name(before), after[:max_chars] if max_chars else after)
    return out


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


@torch.no_grad()
def line_recall(model: GPT, vocab: Vocab, lines: dict[str, str], rows: list[QA]) -> dict[str, Any]:
    """Is the fact stored? For people whose answer is in their pretraining line (after
    the name), greedy continuation of the line up to the answer is checked to start with it.
    Set against question accuracy this separates storing a fact from extracting it."""
    prompts, answers = [], []
    for r in rows:
        name = name_of(r.question)
        line = lines.get(name or "")
        if line is None or name is None:
            continue
        at = line.find(r.answer, line.find(name) + len(name))
        if at <= 0 or at + 32 > model.max_len:
            continue
        prompts.append(vocab.encode(line[:at]))
        answers.append(r.answer)
    model.eval()
    got = [p.text for p in decode_batch(model, vocab, prompts, 32)] if prompts else []
    correct = sum(g.startswith(a) for g, a in zip(got, answers))
    return {"correct": correct, "total": len(answers), "of_people": len(rows),
            "accuracy": 100.0 * correct / max(1, len(answers))}
