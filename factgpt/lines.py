"""Changes to each wiki.txt line before pretraining: focus it on its facts, key it by its question.

A profile or recipe asks for them in its `data` section; with `data.max_chars`
the changed line is cut to its first characters afterwards. No change uses an
answer from a question file: each works on the line's own text.
"""

from __future__ import annotations

import re

from .config import DataSettings
from .datasets import documents
from .people import line_name, split_name

_SENTENCE_END = re.compile(r"(?<= \.) ")
_BIRTH = re.compile(r"\b[Bb]orn\b")
_MONTH = "January|February|March|April|May|June|July|August|September|October|November|December"
# A day-month-year, month-day-year, month-year, numeric date (3-11-1920) or bare year (3-4 digits,
# "1950s"), with the word that introduces it ("on", "in", "c.").
_DATE = re.compile(rf"(?:\b(?:on|in|c\.|circa|ca\.) )?"
                   rf"(?:\b\d{{1,2}}(?:st|nd|rd|th)? (?:{_MONTH}),? \d{{3,4}}"
                   rf"|\b(?:{_MONTH}) \d{{1,2}}(?:st|nd|rd|th)?,? \d{{3,4}}"
                   rf"|\b(?:{_MONTH}) \d{{3,4}}"
                   rf"|\b\d{{1,2}}[-./]\d{{1,2}}[-./]\d{{2,4}}"
                   rf"|\b\d{{3,4}}s?\b)")
_EMPTY_BRACKETS = re.compile(r"\(\s*[-–,;]*\s*\)")


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


# "born" as a word of its own ("American-born" is no birth clause), and a place after it: "in" or
# "at", not a month, then a capitalised word, within 60 characters and before the sentence ends
_BORN_WORD = re.compile(r"(?<![-\w])[Bb]orn\b")
_PLACE_AFTER = re.compile(rf"^[^.;]{{0,60}}?\b(?:in|at) (?!(?:{_MONTH})\b)(?:the )?[A-Z]")


def placed_birth_front(line: str) -> str:
    """birth_front, but of the first "born" whose clause names a place, where one does.

    A line's first "born" often opens a date only ("born 23 June 1940) is an Australian ... singer
    born in Melbourne"); moving the clause that names the place instead keeps the birthplace
    within 96 characters for 1579 of the 1700 training people instead of 1571, 1594 with the
    dates out (bench/line_ceiling.py; training pairs only).
    """
    name, body = split_name(line)
    found = list(_BORN_WORD.finditer(body))
    if not found:
        return line
    pick = next((m for m in found if _PLACE_AFTER.match(body[m.end():])), found[0])
    if pick.start() == 0:
        return line
    return f"{name}. {body[pick.start():]} {body[:pick.start()].rstrip()}"


def drop_dates(line: str) -> str:
    """The line without its dates and years: `born on 3 April 1920 in Philadelphia` becomes
    `born in Philadelphia`. Dates are most of a birth clause's characters and none of its place;
    with the birth clause first and the question key, a line cut to 64 characters then holds its
    person's birthplace for 87% of the training pairs' people instead of 74% (56 characters: 80%
    instead of 51%); dev not counted.
    """
    name, body = split_name(line)
    body = _DATE.sub("", body)
    # the punctuation the dates leave behind: "USA, , of" and "(born , Lahore" and "( )"
    body = re.sub(r"(?<=[(,;])(\s*,)+", "", body)
    body = re.sub(r"\b([Bb]orn)\s*,\s*", r"\1 ", body)
    body = _EMPTY_BRACKETS.sub("", re.sub(r"\s+,", ",", body))
    body = re.sub(r" {2,}", " ", body).replace("( ", "(").replace(" )", ")").strip()
    return f"{name}. {body}" if body else line


def name_key(line: str) -> str:
    """The person's name before every sentence: each sentence is keyed by whom it is about."""
    name, sents = split_line(line)
    return " ".join(f"{name}. {s}" for s in sents) if sents else line


def question_key(line: str) -> str:
    """The line keyed by the question about its person: `Where was NAME born? rest of the line`."""
    name, body = split_name(line)
    return f"Where was {name} born? {body}"


def change_lines(text: str, data: DataSettings) -> str:
    """The corpus with every line changed as `data` asks, in this order: dates out, birth clause
    first (the first one, or with birth_placed the one that names a place), name keys, question
    key (not yet cut: the pretraining source cuts to data.max_chars)."""
    if not (data.drop_dates or data.birth_front or data.name_key or data.question_key):
        return text
    docs = documents(text)
    if data.drop_dates:
        docs = [drop_dates(d) for d in docs]
    if data.birth_front:
        docs = [placed_birth_front(d) if data.birth_placed else birth_front(d) for d in docs]
    if data.name_key:
        docs = [name_key(d) for d in docs]
    if data.question_key:
        docs = [question_key(d) for d in docs]
    return "\n".join(docs) + "\n"


def pretraining_lines(text: str, data: DataSettings) -> dict[str, str]:
    """Each person's line as pretraining shows it (changed, then cut), by the person's name."""
    out: dict[str, str] = {}
    for before, after in zip(documents(text), documents(change_lines(text, data)), strict=True):
        out.setdefault(line_name(before), after[: data.max_chars] if data.max_chars else after)
    return out
