"""A recipe: a profile plus its `recipe` section (RecipeSpec), loaded and checked once."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..config import Profile, check_setting, shipped_names
from ..config import load as load_config
from ..errors import InputError

# What track A keeps of the course's model (configs/profiles/course.json).
ARCHITECTURE = ("n_layer", "n_head", "n_embd", "block_size")
# Settings that were a recipe's and are now every profile's (config.DataSettings, lines.py).
MOVED_TO_DATA = ("birth_front", "name_key", "question_key")


@dataclass
class RecipeSpec:
    track: str = "A"
    mix_qa: float = 0.0
    views: int = 1
    objective: str = "span"
    qa_reads_only: bool = False
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
        if self.recite and not (self.objective == "lm" and self.mix_qa == 0):
            raise InputError("recipe.recite", "needs objective 'lm' and mix_qa 0 "
                                              "(the training people's answers follow their lines instead)")


def essential_settings(settings: dict[str, Any]) -> str:
    """A recipe's recorded settings as they decide what trains, comparable across versions: an
    option added since, at its default, and the words of the description change nothing
    (a --resume and a merge check two runs' settings with this)."""
    defaults = RecipeSpec().__dict__
    spec = {k: v for k, v in settings.get("recipe", {}).items() if k == "track" or defaults.get(k, object()) != v}
    rest = {k: v for k, v in settings.items() if k not in ("recipe", "name", "description")}
    return json.dumps({**rest, "recipe": spec}, sort_keys=True)


# ---- loading ------------------------------------------------------------------------
def recipe_names() -> list[str]:
    return shipped_names("recipes")


@dataclass(frozen=True)
class Recipe:
    """A resolved recipe file: its profile (every section but `recipe`) and its RecipeSpec."""

    profile: Profile
    spec: RecipeSpec

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def description(self) -> str:
        return self.profile.description

    def to_dict(self, name: bool = True) -> dict[str, Any]:
        """What a run records (name=False: a file that loads back to this recipe)."""
        return self.profile.to_dict(name) | {"recipe": asdict(self.spec)}


def course_architecture() -> dict[str, int]:
    model = load_config("profiles", "course").model
    return {k: getattr(model, k) for k in ARCHITECTURE}


def load_recipe(name_or_path: str) -> Recipe:
    profile = load_config("recipes", name_or_path)
    where = profile.where
    given = profile.recipe or {}
    for k in MOVED_TO_DATA:
        if k in given:
            raise InputError(where, f"recipe.{k}: a change to the lines is set in the data section now (data.{k})")
    try:
        spec = RecipeSpec(**{k: check_setting(where, "recipe", RecipeSpec, k, v) for k, v in given.items()})
    except InputError as e:
        if e.where == where:
            raise
        raise InputError(where, f"{e.where}: {e.message}") from None  # name the file, then the setting
    course = course_architecture()
    if spec.track == "A" and ({k: getattr(profile.model, k) for k in ARCHITECTURE} != course or profile.model.word_keys):
        raise InputError(where, f"track A is the course model {course}; use track B for another model")
    if spec.recite and not profile.data.question_key:
        raise InputError(where, "recipe.recite needs data.question_key (the model recites the line its question keys)")
    if spec.qa_reads_only and not profile.model.word_keys:
        raise InputError(where, "recipe.qa_reads_only needs a model with word_keys")
    return Recipe(profile, spec)


def shrink(recipe: Recipe) -> Recipe:
    """A tiny version of a recipe (1 layer, 32-d, one epoch a stage) for checking that it runs."""
    p = recipe.profile
    model: dict[str, Any] = {"n_layer": 1, "n_head": 2, "n_embd": 32}
    if p.model.word_keys:
        model["word_keys"] = 256
    ft = p.finetune_pretrained.max_epochs
    small = p.with_settings(model=model, pretrain={"max_epochs": 1},
                            finetune_pretrained={"max_epochs": min(1, 10 if ft is None else ft)})
    return Recipe(small, replace(recipe.spec, track="B"))
