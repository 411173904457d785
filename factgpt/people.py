"""Whom a wiki.txt line is about: its name, found robustly.

A line reads `NAME. sentence .` and the name itself may hold ". ": initials
("Daniel M. Hausman", "J.C. Patterson", "A. G. E. Blake") and suffixes that end
in a full stop ("Asa G. Yancey, Sr.", whose line starts `Asa G. Yancey, Sr.. `).
Cutting at the first ". " turns "Daniel M. Hausman" into "Daniel M", which gives
the line a wrong question key and loses its person. The rule below reads past a
". " only where the word before it is an initial and what follows, up to the
next ". ", is a few name-like words; it finds the name of every training
person's line exactly (tests/test_people.py checks all of them).
"""

from __future__ import annotations

import re

# An initial: "M", "J.C", "G.W" (the ". " after it is part of the name).
_INITIAL = re.compile(r"(?:[A-Z]\.)*[A-Z]")
# A word that may continue a name after an initial: capitalised ("Hausman", "Jr.",
# "III", "Yancey,") or a short lowercase particle ("van", "de", "y").
_NAME_WORD = re.compile(r"(?:[A-Z][^\s.]*\.?|[a-z]{1,3}|van|von|den|der|del|della|ibn|bin),?")
_MAX_NAME_WORDS = 4  # words after an initial; a sentence ("Pope Saint Anastasius I, born ...") has more


def split_name(line: str) -> tuple[str, str]:
    """(name, the rest of the line after `NAME. `); a line without ". " is all name."""
    start = 0
    while True:
        j = line.find(". ", start)
        if j < 0:
            return line, ""
        last_word = line[:j].rsplit(" ", 1)[-1]
        if _INITIAL.fullmatch(last_word):
            k = line.find(". ", j + 2)
            words = line[j + 2 : k].split(" ") if k >= 0 else []
            if 1 <= len(words) <= _MAX_NAME_WORDS and all(_NAME_WORD.fullmatch(w) for w in words):
                start = j + 2
                continue
        return line[:j], line[j + 2 :]


def line_name(line: str) -> str:
    return split_name(line)[0]
