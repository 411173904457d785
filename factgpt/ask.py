"""`factgpt ask`: answers to "Where was NAME born?", with their evidence.

With a recite model (the shipped default) each answer comes with its
confidence and the line the model recited to find it, and a question about a
person the model has no line for is answered "I don't know" (the abstention
rule in the model's metadata). A course-objective model (e.g. the quick
profile's, `--reading_params_path quick`) answers with its probability and no
evidence, and never abstains.

Questions come from the command line or, without one, from standard input,
one a line, in any of the forms questions.py reads. A bad line does not stop
the others: it gets an error object in its place, and the command exits 2
once every good question is answered.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

from .checkpoint import load_model
from .errors import InputError
from .evaluate import predict
from .grounded import CONFIDENCE, AbstentionRule, answer_questions
from .pipeline import load_corpus
from .questions import Question, parse_question
from .speculative import Drafter
from .vocab import Vocab


@dataclass
class Reply:
    question: str  # the course's question the model was asked
    answer: str | None
    confidence: float  # the score that decided (confidence_score), for an answer and a refusal alike
    recited_line: str | None  # None for a model that does not recite
    first_prob: float | None = None  # a model that does not recite: its first answer character's probability
    line_confidence: float | None = None  # a recite model: how surely the line was recited (line_mean)
    answer_confidence: float | None = None  # a recite model: how surely the answer was read off it (span); None
    # where it was refused for want of a line (no answer was read off it)
    no_line: bool = False  # refused for want of a stored line (else: the answer was not clear in it)
    confidence_score: str = "answer_probability"  # the name of the score in `confidence`
    threshold: float | None = None  # the rule's threshold on that score (None: no rule)
    asked: str = ""  # what was typed
    form: str = "where_was_born"  # questions.FORMS
    char_confidence: tuple[float, ...] = ()  # the probability of each recited character

    def to_json(self) -> dict[str, Any]:
        d = {"question": self.question, "asked": self.asked or self.question, "form": self.form,
             "answer": self.answer, "confidence": round(self.confidence, 6),
             "confidence_score": self.confidence_score, "threshold": self.threshold,
             "recited_line": self.recited_line}  # recited_line null: a model that does not recite
        if self.recited_line is not None:
            d["recited_char_confidence"] = [round(p, 4) for p in self.char_confidence]
        if self.line_confidence is not None:
            d |= {"line_confidence": round(self.line_confidence, 6),
                  "answer_confidence": None if self.answer_confidence is None else round(self.answer_confidence, 6),
                  "refused_for": None if self.answer is not None else ("no_line" if self.no_line else "unclear_answer")}
        return d

    def _score(self) -> str:
        if self.threshold is None:
            return f"{self.confidence_score} {self.confidence:.3f}"
        op = ">=" if self.confidence >= self.threshold else "<"
        return f"{self.confidence_score} {self.confidence:.3f} {op} {self.threshold:.3f}"

    def text(self) -> str:
        if self.recited_line is None:
            return f"{self.answer}\t(probability {self.confidence:.3f}; first character {self.first_prob:.3f})"
        evidence = f'; recited: "{self.recited_line}"'
        if self.answer is None:
            name = self.question[len("Where was "):-len(" born?")]
            why = (f"the model has no line for {name}" if self.no_line
                   else f"the model is not sure which part of the line it recited for {name} is the birthplace")
            return f"I don't know: {why} ({self._score()}{evidence})"
        return f"{self.answer}\t(confidence {self._score()}{evidence})"


@dataclass
class BadQuestion:
    """A line that is not a question the model can be asked, kept in its place in the output."""

    asked: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"asked": self.asked, "error": self.error}

    def text(self) -> str:
        return f"error: {self.error}"


def check_question(q: str, vocab: Vocab, max_len: int, where: str, line: int | None = None) -> Question:
    parsed = parse_question(q, where, line)
    bad = sorted({c for c in parsed.text if c not in vocab.stoi})
    if bad:
        raise InputError(where, f"characters outside the model's vocabulary: {''.join(bad)!r}", line)
    if len(parsed.text) + 1 >= max_len:
        raise InputError(where, f"{len(parsed.text)} characters leave no room for an answer in the block size "
                                f"{max_len + 1}", line)
    return parsed


def read_questions(lines: Iterable[str], vocab: Vocab, max_len: int,
                   where: str = "<stdin>") -> list[Question | BadQuestion]:
    """Every non-blank line of the input as a checked question, or a BadQuestion in its place."""
    out: list[Question | BadQuestion] = []
    for i, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if line.strip():
            try:
                out.append(check_question(line, vocab, max_len, where, i))
            except InputError as e:
                out.append(BadQuestion(line.strip(), str(e)))
    if not out:
        raise InputError(where, "no question given (pass one as an argument, or one a line on standard input)")
    return out


def answer(model_path: str, questions_in: list[str] | None, lines: Iterable[str] | None, corpus_path: str,
           device) -> list[Reply | BadQuestion]:
    corpus = load_corpus(corpus_path)
    model, meta = load_model(model_path, vocab=corpus.vocab, device=device)
    if questions_in is not None:
        qs: list[Question | BadQuestion] = [check_question(q, corpus.vocab, model.max_len, "question")
                                            for q in questions_in]
    else:
        qs = read_questions(lines or [], corpus.vocab, model.max_len)
    return Asker(model, corpus.vocab, meta).ask(qs)


class Asker:
    """A loaded model and its rule, answering checked questions in batches (ask and serve)."""

    def __init__(self, model, vocab: Vocab, meta: dict[str, Any], drafter: Drafter | None = None):
        """drafter: guesses for decoding a lone question speculatively (serve builds one from the
        corpus: the same answers, a lone question's line in fewer passes)."""
        self.model, self.vocab, self.meta, self.drafter = model, vocab, meta, drafter
        self.recites = bool(meta.get("spec", {}).get("recite"))
        self.rule = AbstentionRule.from_meta(meta) if self.recites else None
        self.max_chars = int(meta.get("max_chars") or model.config.block_size)

    def ask(self, items: list[Question | BadQuestion]) -> list[Reply | BadQuestion]:
        good = [q for q in items if isinstance(q, Question)]
        replies = iter(self._replies(good) if good else [])
        return [next(replies) if isinstance(q, Question) else q for q in items]

    def _replies(self, qs: list[Question]) -> list[Reply]:
        texts = [q.text for q in qs]
        if not self.recites:
            return [Reply(q.text, p.text, p.prob, None, p.first_prob, asked=q.asked, form=q.form)
                    for q, p in zip(qs, predict(self.model, self.vocab, texts))]
        span = self.meta["spec"].get("span_answer", True)
        # the free answer after the line is decoded only where something reads it: one decoding fewer
        free = not span or (self.rule is not None and "free_answer" in self.rule.thresholds)
        # a question refused for want of a line has no answer read off it: only the line score decided
        got = answer_questions(self.model, self.vocab, texts, self.max_chars, self.rule, span, free_answers=free,
                               drafter=self.drafter, read_refused_lines=False)
        out = []
        for q, a in zip(qs, got):
            # the score that decided: the first one the rule failed on, else the answer's own score
            score = (self.rule.first_failing(a.scores) or self.rule.answer_score) if self.rule else CONFIDENCE
            span_score = None if math.isnan(a.scores["span"]) else a.scores["span"]  # nan: not read (refused)
            out.append(Reply(q.text, a.answer, a.scores[score], a.recitation, None, a.scores["line_mean"],
                             span_score, a.no_line, score, self.rule.thresholds.get(score) if self.rule else None,
                             q.asked, q.form, a.recitation_probs))
        return out


def render(replies: list[Reply | BadQuestion], as_json: bool) -> str:
    if as_json:
        return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in replies)
    return "".join(r.text() + "\n" for r in replies)
