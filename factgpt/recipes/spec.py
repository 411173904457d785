"""A recipe: a profile plus its `recipe` section (RecipeSpec), loaded and checked once."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from ..errors import InputError
from ..pipeline import bundled_names, load_named_json

COURSE_MODEL = {"n_layer": 4, "n_head": 8, "n_embd": 256, "block_size": 128}


@dataclass
class RecipeSpec:
    track: str = "A"
    mix_qa: float = 0.0
    views: int = 1
    name_key: bool = False
    birth_front: bool = False
    objective: str = "span"
    qa_reads_only: bool = False
    question_key: bool = False
    recite: bool = False
    counterfactual: float = 0.0
    span_answer: bool = False
    noise_density: float = 0.15
    mean_span: float = 3.0

    def __post_init__(self) -> None:
        if self.objective not in ("span", "lm", "multispan"):
            raise InputError("recipe.objective", f"must be 'span', 'lm' or 'multispan', got {self.objective!r}")
        if not 0.0 < self.noise_density < 0.5:
            raise InputError("recipe.noise_density", f"must be in (0, 0.5), got {self.noise_density}")
        if not self.mean_span >= 1:
            raise InputError("recipe.mean_span", f"must be at least 1 (characters), got {self.mean_span}")
        if self.track not in ("A", "B"):
            raise InputError("recipe.track", f"must be 'A' (the course model) or 'B' (any model), got {self.track!r}")
        if not 0.0 <= self.mix_qa < 1.0:
            raise InputError("recipe.mix_qa", f"must be in [0, 1), got {self.mix_qa}")
        if int(self.views) < 1:
            raise InputError("recipe.views", f"must be a positive integer, got {self.views}")
        if not 0.0 <= self.counterfactual < 1.0 or (self.counterfactual and not self.recite):
            raise InputError("recipe.counterfactual", f"must be in [0, 1) and needs recite, got {self.counterfactual}")
        if self.span_answer and not self.recite:
            raise InputError("recipe.span_answer", "needs recite (the answer is a piece of the recitation)")
        if self.recite and not (self.question_key and self.objective == "lm" and self.mix_qa == 0):
            raise InputError("recipe.recite", "needs question_key, objective 'lm' and mix_qa 0 "
                                              "(the training people's answers follow their lines instead)")


# ---- loading ------------------------------------------------------------------------
def recipe_names() -> list[str]:
    return bundled_names("recipes")


def load_recipe(name_or_path: str) -> dict[str, Any]:
    rec, where = load_named_json("recipes", "recipe", name_or_path,
                                 ("description", "model", "pretrain", "finetune_pretrained"))
    spec_keys = {f.name for f in fields(RecipeSpec)}
    unknown = set(rec.get("recipe", {})) - spec_keys
    if unknown:
        raise InputError(where, f"unknown recipe settings {sorted(unknown)}; known: {sorted(spec_keys)}")
    spec = RecipeSpec(**rec.get("recipe", {}))
    if spec.track == "A" and ({k: rec["model"].get(k) for k in COURSE_MODEL} != COURSE_MODEL
                              or rec["model"].get("word_keys")):
        raise InputError(where, f"track A is the course model {COURSE_MODEL}; use track B for another model")
    if spec.qa_reads_only and not rec["model"].get("word_keys"):
        raise InputError(where, "recipe.qa_reads_only needs a model with word_keys")
    rec["spec"] = spec
    return rec


def shrink(recipe: dict) -> dict:
    """A tiny version of a recipe (1 layer, 32-d, one epoch a stage) for checking that it runs."""
    small = json.loads(json.dumps({k: v for k, v in recipe.items() if k != "spec"}))
    small["model"].update(n_layer=1, n_head=2, n_embd=32)
    if small["model"].get("word_keys"):
        small["model"]["word_keys"] = 256
    small["pretrain"]["max_epochs"] = 1
    small["finetune_pretrained"]["max_epochs"] = min(1, small["finetune_pretrained"]["max_epochs"])
    small["spec"] = RecipeSpec(**{**recipe["spec"].__dict__, "track": "B"})
    return small
