"""Changes to each wiki.txt line that focus pretraining on the facts (and key them by the question)."""

from __future__ import annotations

import re

from ..datasets import documents
from ..people import split_name
from .spec import RecipeSpec

_SENTENCE_END = re.compile(r"(?<= \.) ")
_BIRTH = re.compile(r"\b[Bb]orn\b")


def split_line(line: str) -> tuple[str, list[str]]:
    """(name, sentences) of a wiki.txt line `NAME. sentence . sentence .`"""
    name, body = split_name(line)
    return name, [s for s in _SENTENCE_END.split(body) if s]


def birth_front(line: str) -> str:
    """Move the birth clause (from the first word "born" on) to just after the name.

    The text before it follows, so nothing is lost; cut to its first characters
    (data.max_chars), a line then holds its birthplace far more often: within
    56 characters for 83% of dev people instead of 38%.
    """
    name, body = split_name(line)
    m = _BIRTH.search(body)
    if m is None or m.start() == 0:
        return line
    return f"{name}. {body[m.start():]} {body[:m.start()].rstrip()}"


def name_key(line: str) -> str:
    """The person's name before every sentence: each sentence is keyed by whom it is about."""
    name, sents = split_line(line)
    return " ".join(f"{name}. {s}" for s in sents) if sents else line


def question_key(line: str) -> str:
    """The line keyed by the question about its person: `Where was NAME born? rest of the line`."""
    name, body = split_name(line)
    return f"Where was {name} born? {body}"


def augment_text(text: str, spec: RecipeSpec) -> str:
    docs = documents(text)
    if spec.birth_front:
        docs = [birth_front(d) for d in docs]
    if spec.name_key:
        docs = [name_key(d) for d in docs]
    if spec.question_key:
        docs = [question_key(d) for d in docs]
    return "\n".join(docs) + "\n"
