"""Answers with their evidence, and "I don't know" where the model has no line.

A recite model (recite.py) answers "Where was NAME born?" by reciting the line
it stored for NAME and reading the place off it. That recitation is the
evidence a user can check, and how surely the model recites it says whether a
line was stored at all: a stored line comes back with every character near
certain, while for a name it never saw the model must guess its way through.
Whether the answer read off a stored line is right is another question, which
the answer's own probability tells far better. An AbstentionRule therefore
sets a threshold on each of two scores, "is there a line" and "is the answer in
it"; which scores and which thresholds are measured on held-out people and
made-up names (abstention.py) and shipped in the model's metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .model import GPT
from .recite import LineFloor, Recitation, answers_after, recite, recite_and_spans
from .speculative import Drafter
from .vocab import Vocab


def _line_min(r: Recitation, span_logp: float | None) -> float:
    return min(r.line.char_probs, default=0.0)


def _line_mean(r: Recitation, span_logp: float | None) -> float:
    p = r.line.char_probs
    return math.exp(sum(math.log(max(q, 1e-30)) for q in p) / len(p)) if p else 0.0


def _span(r: Recitation, span_logp: float | None) -> float:
    return math.exp(span_logp) if span_logp is not None else r.answer.prob  # no span: the answer was decoded


def _free_answer(r: Recitation, span_logp: float | None) -> float:
    return r.answer.prob if r.answer is not None else math.nan  # not decoded: no rule may use it


def _line_min_x_span(r: Recitation, span_logp: float | None) -> float:
    return _line_min(r, span_logp) * _span(r, span_logp)


def _line_mean_x_span(r: Recitation, span_logp: float | None) -> float:
    return _line_mean(r, span_logp) * _span(r, span_logp)


# Each score is a probability-like number in [0, 1]; higher means "more sure".
SCORES: dict[str, Callable[[Recitation, float | None], float]] = {
    "line_min": _line_min,  # the least likely character of the recited line
    "line_mean": _line_mean,  # geometric mean of the recited line's character probabilities
    "span": _span,  # the chosen span's probability after the line (span and closing ⁇)
    "free_answer": _free_answer,  # the freely decoded answer's probability
    "line_min_x_span": _line_min_x_span,
    "line_mean_x_span": _line_mean_x_span,  # the line and the answer together (GroundedAnswer.confidence)
}
CONFIDENCE = "line_mean_x_span"
LINE_SCORES = ("line_min", "line_mean")  # the scores of the recited line alone


@dataclass(frozen=True)
class AbstentionRule:
    """Answer only where every named score reaches its threshold: {"line_mean": 0.99, "span": 0.5}."""

    thresholds: dict[str, float]

    def __post_init__(self) -> None:
        if not self.thresholds:
            raise ValueError("an abstention rule needs at least one score and threshold")
        for score, t in self.thresholds.items():
            if score not in SCORES:
                raise ValueError(f"unknown abstention score {score!r}; expected one of {sorted(SCORES)}")
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"abstention threshold {t} of {score} is outside [0, 1]")

    def answers(self, scores: dict[str, float]) -> bool:
        return all(scores[k] >= t for k, t in self.thresholds.items())

    @property
    def answer_score(self) -> str:
        """The last score: the one an answer is shown with (the line score comes first)."""
        return list(self.thresholds)[-1]

    def first_failing(self, scores: dict[str, float]) -> str | None:
        """The first score below its threshold (the line score comes first), or None."""
        return next((k for k, t in self.thresholds.items() if scores[k] < t), None)

    def describe(self) -> str:
        return " and ".join(f"{k} ≥ {t:.4g}" for k, t in self.thresholds.items())

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "AbstentionRule | None":
        a = meta.get("abstention")
        return cls({k: float(v) for k, v in a["thresholds"].items()}) if a else None


@dataclass
class GroundedAnswer:
    question: str
    guess: str  # what the model answers when made to answer
    answer: str | None  # the guess, or None where the rule says the model does not know
    confidence: float  # line_mean × span: the line recited surely and the answer read surely
    recitation: str  # the line the model recited to find the answer
    scores: dict[str, float]  # every score of SCORES, for measuring
    no_line: bool = False  # refused because no line was recited surely (else: the answer was not read surely)
    recitation_probs: tuple[float, ...] = ()  # the probability of each recited character
    free_answer: str = ""  # the answer decoded freely after the line (the guess when there is no span)

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "confidence": round(self.confidence, 6),
                "recited_line": self.recitation, "guess": self.guess}


def answer_questions(model: GPT, vocab: Vocab, questions: list[str], max_chars: int,
                     rule: AbstentionRule | None = None, span_answer: bool = True,
                     free_answers: bool = True, drafter: Drafter | None = None,
                     read_refused_lines: bool = True) -> list[GroundedAnswer]:
    """Recite and answer every question; refuse those whose score falls below the rule's threshold.

    The one recite-then-answer of the package: `ask`, `serve`, `evaluate`, abstention, the
    analysis and the recipes' scoring all answer through it. span_answer: the guess is the
    recitation's most likely word run (recite.recite_and_spans: best_spans read off the
    recitation's own cache); else the freely decoded answer.
    free_answers=False (span answers only, and a rule that does not read free_answer) decodes the
    free answer only where the line has no span to answer with: a decoding fewer a question.
    drafter: a lone question's line is decoded speculatively with its guesses (the same line, in
    fewer passes; speculative.py).
    read_refused_lines=False: where the rule's first score is a line score (LINE_SCORES) and the
    recited line falls below it, the question is refused for want of a line whatever its answer
    would be, so no answer is read off that line: its guess is "" and its answer scores NaN
    (`ask` and `serve`, which show only the score that decided; the analyses read every score).
    With span answers, such a line also stops where its refusal becomes certain (recite.LineFloor):
    its recitation is the part recited until then, whose line score is below the threshold too."""
    if not free_answers and (not span_answer or (rule is not None and "free_answer" in rule.thresholds)):
        raise ValueError("the free answers are needed: without span answers, or by a rule on free_answer")
    first = next(iter(rule.thresholds)) if rule is not None else None
    read, floor = None, None
    if not read_refused_lines and first in LINE_SCORES:
        line_ok = SCORES[first]
        read = lambda line: line_ok(Recitation(line, None), None) >= rule.thresholds[first]  # noqa: E731
        floor = LineFloor(first, rule.thresholds[first])
    if span_answer:
        recs, spans = recite_and_spans(model, vocab, questions, max_chars, answers=free_answers, drafter=drafter,
                                       read=read, floor=floor)
    else:
        recs, spans = recite(model, vocab, questions, max_chars, answers=free_answers), [None] * len(questions)
    unread = {i for i, r in enumerate(recs) if read is not None and not read(r.line)}
    need = [i for i, (r, sp) in enumerate(zip(recs, spans)) if r.answer is None and sp is None and i not in unread]
    for i, a in zip(need, answers_after(model, vocab, [questions[i] for i in need], [recs[i].line.text for i in need])):
        recs[i].answer = a
    out = []
    for i, (q, r, sp) in enumerate(zip(questions, recs, spans, strict=True)):
        logp = sp[1] if sp is not None else None
        if i in unread:  # refused on its line: nothing was read off it
            guess = ""
            scores = {k: f(r, None) if k in LINE_SCORES else math.nan for k, f in SCORES.items()}
        else:
            guess = sp[0] if sp is not None else r.answer.text
            scores = {k: f(r, logp) for k, f in SCORES.items()}
        failing = rule.first_failing(scores) if rule else None
        no_line = failing is not None and failing == next(iter(rule.thresholds))  # type: ignore[union-attr]
        out.append(GroundedAnswer(q, guess, guess if failing is None else None, scores[CONFIDENCE], r.line.text,
                                  scores, no_line, tuple(r.line.char_probs), r.answer.text if r.answer else ""))
    return out
