"""Answers with their evidence, and "I don't know" where the model has no line.

A recite model (recite.py) answers "Where was NAME born?" by reciting the line
it stored for NAME and reading the place off it. That recitation is the
evidence a user can check, and how surely the model recites it says whether a
line was stored at all: a stored line comes back with every character near
certain, while for a name it never saw the model must guess its way through.
An AbstentionRule turns one such score into a decision; which score and which
threshold are measured on held-out people and made-up names (abstention.py)
and shipped in the model's metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .model import GPT
from .recite import Recitation, best_spans, recite
from .vocab import Vocab


def _line_min(r: Recitation, span_logp: float | None) -> float:
    return min(r.line.char_probs, default=0.0)


def _line_mean(r: Recitation, span_logp: float | None) -> float:
    p = r.line.char_probs
    return math.exp(sum(math.log(max(q, 1e-30)) for q in p) / len(p)) if p else 0.0


def _span(r: Recitation, span_logp: float | None) -> float:
    return math.exp(span_logp) if span_logp is not None else r.answer.prob


def _free_answer(r: Recitation, span_logp: float | None) -> float:
    return r.answer.prob


def _line_min_x_span(r: Recitation, span_logp: float | None) -> float:
    return _line_min(r, span_logp) * _span(r, span_logp)


# Each score is a probability-like number in [0, 1]; higher means "more sure".
SCORES: dict[str, Callable[[Recitation, float | None], float]] = {
    "line_min": _line_min,  # the least likely character of the recited line
    "line_mean": _line_mean,  # geometric mean of the recited line's character probabilities
    "span": _span,  # the chosen span's probability after the line (span and closing ⁇)
    "free_answer": _free_answer,  # the freely decoded answer's probability
    "line_min_x_span": _line_min_x_span,
}


@dataclass(frozen=True)
class AbstentionRule:
    score: str  # a key of SCORES
    threshold: float  # answer when the score is at least this

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown abstention score {self.score!r}; expected one of {sorted(SCORES)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"abstention threshold {self.threshold} is outside [0, 1]")

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "AbstentionRule | None":
        a = meta.get("abstention")
        return cls(a["score"], float(a["threshold"])) if a else None


@dataclass
class GroundedAnswer:
    question: str
    guess: str  # what the model answers when made to answer
    answer: str | None  # the guess, or None where the rule says the model does not know
    confidence: float  # the rule's score (with no rule: line_min)
    recitation: str  # the line the model recited to find the answer
    scores: dict[str, float]  # every score of SCORES, for measuring

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "confidence": round(self.confidence, 6),
                "recited_line": self.recitation, "guess": self.guess}


def answer_questions(model: GPT, vocab: Vocab, questions: list[str], max_chars: int,
                     rule: AbstentionRule | None = None, span_answer: bool = True) -> list[GroundedAnswer]:
    """Recite and answer every question; refuse those whose score falls below the rule's threshold."""
    recs = recite(model, vocab, questions, max_chars)
    spans = best_spans(model, vocab, questions, [r.line.text for r in recs]) if span_answer else [None] * len(recs)
    out = []
    for q, r, sp in zip(questions, recs, spans, strict=True):
        logp = sp[1] if sp is not None else None
        guess = sp[0] if sp is not None else r.answer.text
        scores = {k: f(r, logp) for k, f in SCORES.items()}
        conf = scores[rule.score] if rule else scores["line_min"]
        known = rule is None or conf >= rule.threshold
        out.append(GroundedAnswer(q, guess, guess if known else None, conf, r.line.text, scores))
    return out
