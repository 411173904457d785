"""`factgpt ask`: answers to "Where was NAME born?", with their evidence.

With a recite model (the shipped default) each answer comes with its
confidence and the line the model recited to find it, and a question about a
person the model has no line for is answered "I don't know" (the abstention
rule in the model's metadata). A course-objective model (e.g. the quick
profile's, `--reading_params_path quick`) answers with its probability and no
evidence, and never abstains.

Questions come from the command line or, without one, from standard input,
one a line; all are checked before any is answered, so a bad one costs one
line `where: what is wrong` and exit code 2, with nothing printed for the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from .checkpoint import load_model
from .errors import InputError
from .evaluate import predict
from .grounded import AbstentionRule, answer_questions
from .heldout import name_of
from .pipeline import load_corpus
from .vocab import Vocab


@dataclass
class Reply:
    question: str
    answer: str | None
    confidence: float
    recited_line: str | None  # None for a model that does not recite
    first_prob: float | None = None  # a model that does not recite: its first answer character's probability
    line_confidence: float | None = None  # a recite model: how surely the line was recited (line_mean)
    answer_confidence: float | None = None  # a recite model: how surely the answer was read off it (span)
    no_line: bool = False  # refused for want of a stored line (else: the answer was not clear in it)

    def to_json(self) -> dict[str, Any]:
        d = {"question": self.question, "answer": self.answer, "confidence": round(self.confidence, 6),
             "recited_line": self.recited_line}  # recited_line null: a model that does not recite
        if self.line_confidence is not None:
            d |= {"line_confidence": round(self.line_confidence, 6),
                  "answer_confidence": round(self.answer_confidence or 0.0, 6)}
        return d

    def text(self) -> str:
        if self.recited_line is None:
            return f"{self.answer}\t(probability {self.confidence:.3f}; first character {self.first_prob:.3f})"
        evidence = f'; recited: "{self.recited_line}"' if self.recited_line is not None else ""
        if self.answer is None:
            name = name_of(self.question)
            why = (f"the model has no line for {name}" if self.no_line
                   else f"the model is not sure which part of the line it recited for {name} is the birthplace")
            return f"I don't know: {why} (confidence {self.confidence:.3f}{evidence})"
        return f"{self.answer}\t(confidence {self.confidence:.3f}{evidence})"


def check_question(q: str, vocab: Vocab, max_len: int, where: str, line: int | None = None) -> str:
    q = q.strip()
    if not q:
        raise InputError(where, "empty question", line)
    if not name_of(q) or not name_of(q).strip():
        raise InputError(where, f"expected a question of the form 'Where was NAME born?', got {q!r}", line)
    bad = sorted({c for c in q if c not in vocab.stoi})
    if bad:
        raise InputError(where, f"characters outside the model's vocabulary: {''.join(bad)!r}", line)
    if len(q) + 1 >= max_len:
        raise InputError(where, f"{len(q)} characters leave no room for an answer in the block size {max_len + 1}", line)
    return q


def read_questions(lines: Iterable[str], vocab: Vocab, max_len: int, where: str = "<stdin>") -> list[str]:
    """Every non-blank line of the input as a checked question."""
    out = []
    for i, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if line.strip():
            out.append(check_question(line, vocab, max_len, where, i))
    if not out:
        raise InputError(where, "no question given (pass one as an argument, or one a line on standard input)")
    return out


def answer(model_path: str, questions_in: list[str] | None, lines: Iterable[str] | None, corpus_path: str,
           device) -> list[Reply]:
    corpus = load_corpus(corpus_path)
    model, meta = load_model(model_path, vocab=corpus.vocab, device=device)
    block = model.config.block_size
    if questions_in is not None:
        qs = [check_question(q, corpus.vocab, model.max_len, "question") for q in questions_in]
    else:
        qs = read_questions(lines or [], corpus.vocab, model.max_len)
    if meta.get("spec", {}).get("recite"):
        got = answer_questions(model, corpus.vocab, qs, int(meta.get("max_chars") or block),
                               AbstentionRule.from_meta(meta), meta["spec"].get("span_answer", True))
        return [Reply(a.question, a.answer, a.confidence, a.recitation, None, a.scores["line_mean"], a.scores["span"],
                      a.no_line) for a in got]
    return [Reply(q, p.text, p.prob, None, p.first_prob) for q, p in zip(qs, predict(model, corpus.vocab, qs))]


def render(replies: list[Reply], as_json: bool) -> str:
    if as_json:
        return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in replies)
    return "".join(r.text() + "\n" for r in replies)
