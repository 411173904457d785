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

import random
import re
from typing import Sequence

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


# ---- made-up names ------------------------------------------------------------------
FIRST = re.compile(r"^[A-Z][a-z]+$")
LAST = re.compile(r"^[A-Z][a-z]{2,}$")
# Words that begin names in the corpus without being given names.
NOT_GIVEN_NAMES = {"Sir", "Saint", "San", "Santa", "St", "Lord", "Lady", "King", "Queen", "Prince", "Princess",
                   "Dr", "Mr", "Mrs", "Ms", "The", "Pope", "General", "Captain", "Count", "Baron", "Father"}


def name_parts(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(given names, surnames): the first and last words of multi-word names that look like names."""
    firsts, lasts = [], []
    for n in names:
        words = n.split()
        if len(words) < 2:
            continue
        if FIRST.match(words[0]) and words[0] not in NOT_GIVEN_NAMES:
            firsts.append(words[0])
        if LAST.match(words[-1]):
            lasts.append(words[-1])
    return firsts, lasts


def recombined_names(firsts: Sequence[str], lasts: Sequence[str], haystacks: Sequence[str], n: int, seed: int,
                     middle_rate: float = 0.0) -> list[str]:
    """n distinct made-up names: a given name and a surname drawn apart (with their
    frequencies), sometimes a middle name, kept only if the name occurs in none of the
    haystacks (as a substring); the same list for the same arguments."""
    if not firsts or not lasts:
        raise ValueError("no names to recombine")
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(max(1000, 1000 * n)):
        if len(out) == n:
            break
        first, last = rng.choice(firsts), rng.choice(lasts)
        middle = rng.choice(firsts) if rng.random() < middle_rate else None
        if last in (first, middle) or first == middle:
            continue
        name = " ".join(w for w in (first, middle, last) if w)
        if name in seen:
            continue
        seen.add(name)
        if any(name in h for h in haystacks):
            continue
        out.append(name)
    if len(out) < n:
        raise ValueError(f"found only {len(out)} unseen names, wanted {n}")
    return out
