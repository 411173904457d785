"""Questions as people type them, read as the course's question `Where was NAME born?`.

The model was trained on that one form, so every accepted form is rewritten to
it before the model sees it, and the reply says which form was asked:

  where_was_born   Where was NAME born?   (any case of the fixed words; the ? may be left out)
  where_from       Where is NAME from?    (or "Where was NAME from?")
  birthplace       NAME's birthplace      (or "NAME's place of birth", "birthplace of NAME")
  name             NAME                   (a bare name: anything with a letter and no question mark)

The name itself is kept exactly as typed: to a character model "ralf wadephul"
is another string than "Ralf Wadephul", and is answered as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError
from .heldout import QUESTION_PREFIX, QUESTION_SUFFIX

FORMS = ("where_was_born", "where_from", "birthplace", "name")
_PATTERNS = (
    ("where_was_born", re.compile(r"where\s+was\s+(?P<name>.+?)\s+born\s*\??", re.I)),
    ("where_from", re.compile(r"where\s+(?:is|was)\s+(?P<name>.+?)\s+from\s*\??", re.I)),
    ("birthplace", re.compile(r"(?P<name>.+?)(?:'s|’s|s')\s+(?:birthplace|place\s+of\s+birth)\s*\??", re.I)),
    ("birthplace", re.compile(r"(?:birthplace|place\s+of\s+birth)\s+of\s+(?P<name>.+?)\s*\??", re.I)),
)


@dataclass(frozen=True)
class Question:
    asked: str  # what was typed, stripped
    form: str  # one of FORMS
    name: str

    @property
    def text(self) -> str:
        """The course's question, the only form the model was trained on."""
        return f"{QUESTION_PREFIX}{self.name}{QUESTION_SUFFIX}"


def parse_question(text: str, where: str = "question", line: int | None = None) -> Question:
    """The question `text` asks, or an InputError saying why it is not one."""
    asked = " ".join(text.split())
    if not asked:
        raise InputError(where, "empty question", line)
    for form, pattern in _PATTERNS:
        m = pattern.fullmatch(asked)
        if m:
            name = m.group("name").strip()
            break
    else:
        if "?" in asked:
            raise InputError(where, f"expected a name or a question like 'Where was NAME born?', got {asked!r}", line)
        form, name = "name", asked
    if not any(c.isalpha() for c in name):
        raise InputError(where, f"no name in {asked!r}", line)
    return Question(asked, form, name)
