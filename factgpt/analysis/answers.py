"""What each analysed model answers, in one shape whatever its kind.

Two kinds of model are analysed side by side:

- a course-objective model (span-corruption pretraining, then finetuning on the
  question format) answers by greedy decoding after the question; its
  confidences are the answer's probability and its first character's;
- a recite model (recite.py) recites the line it stored for the name, then
  reads the answer off it (grounded.py); its confidences are the score `ask`
  shows (line × span) and the line score alone, and its abstention rule, when
  the checkpoint carries one, says which answers it would give at all.

Each answer also records the view of a wiki.txt line the model was trained on
(how lines were changed and where they were cut), so that the splits by "is
the place in the line the model saw" follow each model's own cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..config import RENAMED, DataSettings
from ..evaluate import predict
from ..grounded import CONFIDENCE, AbstentionRule, answer_questions
from ..model import GPT
from ..pipeline import load_profile
from ..vocab import Vocab

SPAN_SHOWN = 112  # int(128 * 7 / 8): the longest prefix of a line that span corruption shows

# The two confidences of each kind: (JSON key, what it is).
KINDS = {
    "course": (("answer", "probability of the answer"), ("first_char", "probability of its first character")),
    "recite": (("answer", f"shown confidence ({CONFIDENCE})"), ("first_char", "line score (line_mean)")),
}


@dataclass
class Answer:
    text: str  # what the model answers when made to answer
    prob: float  # its confidence: the answer's probability, or a recite model's shown confidence
    first_prob: float  # the second confidence: the first character's probability, or the line score
    answered: bool = True  # False where the abstention rule refuses
    recitation: str | None = None  # a recite model's recited line


@dataclass
class ModelView:
    """How a model saw wiki.txt, for the splits: the line changes and the cut."""

    kind: str  # "course" or "recite"
    data: DataSettings = field(default_factory=DataSettings)
    cut: int = SPAN_SHOWN  # characters of the (changed) line the model was ever shown
    rule: AbstentionRule | None = None

    def describe(self) -> str:
        d = self.data
        birth = "the place-naming birth clause first" if d.birth_placed else "birth clause first"
        changes = [n for n, on in (("dates out", d.drop_dates), (birth, d.birth_front), ("name keys", d.name_key),
                                   ("keyed by the question", d.question_key)) if on]
        return (", ".join(changes) + "; " if changes else "") + f"first {self.cut} characters"


def model_view(meta: dict[str, Any], profile: str | None = None) -> ModelView:
    """A checkpoint's view of the lines, from its metadata (a recite model's spec and cut), or from the
    profile it was trained with (the metadata's shipped_from.profile, else `profile`)."""
    spec = meta.get("spec") or {}
    if spec.get("recite"):
        cut = int(meta.get("max_chars") or SPAN_SHOWN)
        # the line changes are in "data" (older recipe checkpoints kept them in the spec)
        given = meta.get("data") or spec
        # every line change it recorded (dates out, which birth clause first, ...), so that the analysis
        # reads the lines as the model was trained on them; the cut is the one it recites
        changes = {k: bool(v) for k, v in given.items() if k in DataSettings.__dataclass_fields__ and k != "max_chars"}
        data = DataSettings(**changes, max_chars=cut)
        return ModelView("recite", data, cut, AbstentionRule.from_meta(meta))
    if isinstance(meta.get("data"), dict):  # recorded by the stage that trained it
        data = DataSettings(**{k: v for k, v in meta["data"].items() if k in DataSettings.__dataclass_fields__})
    else:  # older checkpoints: the profile they name, as it is now
        name = (meta.get("shipped_from") or {}).get("profile") or meta.get("profile") or profile
        name = RENAMED.get(name, name) if name else name  # a profile renamed since: its settings' new name
        data = load_profile(name).data if name else DataSettings()
    cut = min(SPAN_SHOWN, data.max_chars) if data.max_chars else SPAN_SHOWN
    return ModelView("course", data, cut)


def answer_all(model: GPT, view: ModelView, vocab: Vocab, questions: Sequence[str],
               batch_size: int = 512) -> list[Answer]:
    """Every question answered the model's own way."""
    if view.kind == "recite":
        got = answer_questions(model, vocab, list(questions), view.cut, view.rule)
        return [Answer(g.guess, g.scores[CONFIDENCE], g.scores["line_mean"], g.answer is not None, g.recitation)
                for g in got]
    return [Answer(p.text, p.prob, p.first_prob) for p in predict(model, vocab, list(questions), batch_size=batch_size)]
