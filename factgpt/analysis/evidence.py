"""A recite model's evidence: the line it recited next to the line it was trained on.

For right and wrong dev answers the real line is the person's own pretraining
line (changed and cut as the model saw it). For a made-up name there is no
own line; the real line shown is the pretraining line most like the
recitation (difflib's ratio, over the lines that share the most character
trigrams with it), which says whether the model recited some real person's
line, and whose. Wrong answers are counted by
where they went wrong (recipes.diagnostics.recite_errors).
"""

from __future__ import annotations

import difflib
import random
from typing import Any, Sequence

from ..datasets import QA
from ..heldout import name_of
from ..recipes.diagnostics import RECITE_ERRORS, recite_errors
from .answers import Answer

RECITED_A_REAL_LINE = 0.8  # difflib ratio from which a recitation counts as some real line


def body(line: str, question: str) -> str:
    """A question-keyed line without its question."""
    return line[len(question) + 1 :] if line.startswith(question + " ") else line


def char_diff(recited: str, real: str) -> list[tuple[str, str, str]]:
    """(op, recited piece, real piece) with op equal | replace | delete (only recited) | insert (only real)."""
    sm = difflib.SequenceMatcher(None, recited, real, autojunk=False)
    return [(op, recited[i1:i2], real[j1:j2]) for op, i1, i2, j1, j2 in sm.get_opcodes()]


def _trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


def closest_line(recited: str, bodies: Sequence[str], grams: Sequence[set[str]] | None = None,
                 shortlist: int = 40) -> tuple[int, float]:
    """(index, ratio) of the body most like the recitation; (-1, 0.0) when none is at all alike.

    difflib's ratio is computed for the `shortlist` bodies sharing the most character
    trigrams with the recitation (all of them when there are fewer), not for every line."""
    grams = grams if grams is not None else [_trigrams(b) for b in bodies]
    mine = _trigrams(recited)
    order = sorted(range(len(bodies)), key=lambda i: -len(mine & grams[i]))[:shortlist]
    best, score = -1, 0.0
    for i in sorted(order):
        sm = difflib.SequenceMatcher(None, recited, bodies[i], autojunk=False)
        if sm.real_quick_ratio() <= score or sm.quick_ratio() <= score:
            continue
        r = sm.ratio()
        if r > score:
            best, score = i, r
    return best, score


def recite_evidence(dev_rows: Sequence[QA], dev: Sequence[Answer], made_up: Sequence[str], unseen: Sequence[Answer],
                    lines: dict[str, str], seed: int = 0, k: int = 6,
                    nearest_people: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """Examples and counts for the evidence section; lines: each person's pretraining line by name."""
    rng = random.Random(seed)
    recs = [a.recitation or "" for a in dev]
    errors = recite_errors(list(dev_rows), lines, recs, [a.text for a in dev])

    def dev_item(i: int) -> dict[str, Any]:
        r, a = dev_rows[i], dev[i]
        line = lines.get(name_of(r.question) or "", "")
        return {"question": r.question, "gold": r.answer, "answer": a.text, "answered": a.answered,
                "confidence": a.prob, "recited": recs[i], "real": body(line, r.question)}

    right = [i for i, (r, a) in enumerate(zip(dev_rows, dev)) if a.text == r.answer]
    wrong = [i for i, (r, a) in enumerate(zip(dev_rows, dev)) if a.text != r.answer]
    pick = lambda idx: sorted(rng.sample(idx, min(k, len(idx))))  # noqa: E731

    # Made-up names: which real line each recitation is most like.
    names = list(lines)
    bodies = [body(lines[n], f"Where was {n} born?") for n in names]
    grams = [_trigrams(b) for b in bodies]
    closest = [closest_line(a.recitation or "", bodies, grams) for a in unseen]
    real_like = [(n, j, s) for n, (j, s) in zip(made_up, closest) if s >= RECITED_A_REAL_LINE]
    near_hit = None
    if nearest_people is not None:
        near_hit = sum(names[j] in set(nearest_people[i]) for i, (j, s) in enumerate(closest)
                       if s >= RECITED_A_REAL_LINE)
    unseen_items = []
    for i in pick(list(range(len(made_up)))):
        j, s = closest[i]
        unseen_items.append({"name": made_up[i], "answer": unseen[i].text, "answered": unseen[i].answered,
                             "confidence": unseen[i].prob, "recited": unseen[i].recitation or "",
                             "real": bodies[j] if j >= 0 else "", "real_person": names[j] if j >= 0 else None,
                             "ratio": s})
    return {
        "errors": errors, "error_kinds": list(RECITE_ERRORS), "n": len(dev_rows),
        "correct": [dev_item(i) for i in pick(right)],
        "wrong": [dev_item(i) for i in pick(wrong)],
        "made_up": unseen_items,
        "made_up_reciting_a_real_line": len(real_like),
        "made_up_reciting_a_nearest_persons_line": near_hit,
        "made_up_total": len(made_up),
        "real_line_ratio": RECITED_A_REAL_LINE,
        "mean_closest_ratio": sum(s for _, s in closest) / max(1, len(closest)),
    }
