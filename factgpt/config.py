"""Typed configuration: a profile or recipe file, resolved through its `base` and checked once.

A configuration file is a JSON object with up to eight sections:

  base                 the profile or recipe it changes (a shipped name, or a path
                       relative to the file); its settings, then this file's
  description          one line saying what it is for
  model                ModelSettings: the architecture
  data                 DataSettings: what is done to wiki.txt before training
  common               StageSettings shared by the three stages below
  pretrain, finetune_pretrained, finetune_scratch
                       StageSettings of each stage (common first, then these)
  recipe               a recipe's RecipeSpec (recipes/spec.py checks its values)

A file lists only what it changes: the course's numbers stand once, in
configs/profiles/course.json, the root every other file leads to. Loading
resolves the chain of bases, merges the sections setting by setting and checks
every name and type, so that a bad file costs one line naming the file and
the setting: `laptop.json: pretrain.batch_size: expected an integer, got "32"`.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError
from .fileio import read_text

STAGES = ("pretrain", "finetune_pretrained", "finetune_scratch")


@dataclass(frozen=True)
class ModelSettings:
    """The GPT's architecture (GPTConfig without the vocabulary and the variant)."""

    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    embd_pdrop: float
    resid_pdrop: float
    attn_pdrop: float
    synth_per_head_b: bool = False
    word_keys: int = 0  # buckets of a word-key table (the wordkeys_small profiles, track B recipes); 0: the plain model
    rope: bool = False


@dataclass(frozen=True)
class DataSettings:
    """What is done to each wiki.txt line before pretraining (lines.py), then the cut."""

    drop_dates: bool = False  # dates and years taken out of the line (lines.drop_dates)
    birth_front: bool = False  # the birth clause moved to just after the name
    birth_placed: bool = False  # with birth_front: the first clause that names a place (lines.placed_birth_front)
    name_key: bool = False  # the name before every sentence
    question_key: bool = False  # the line starts "Where was NAME born? " (no answer is used)
    max_chars: int | None = None  # cut every (changed) line to its first characters


@dataclass(frozen=True)
class StageSettings:
    """Training settings of a stage (train.TrainConfig's fields); None: not set here."""

    max_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    betas: tuple[float, float] | None = None
    grad_norm_clip: float | None = None
    weight_decay: float | None = None
    lr_decay: bool | None = None
    warmup_tokens: int | None = None
    final_tokens: int | None = None
    # final_tokens as a multiple of the pretraining corpus's line count
    final_tokens_per_pretrain_example: int | None = None
    tokens_per_example: int | None = None
    shuffle: bool | None = None
    decay_norms_and_embeddings: bool | None = None
    first_step_full_lr: bool | None = None
    pack: bool | None = None
    precision: str | None = None

    def given(self) -> dict[str, Any]:
        """The settings this stage sets."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Profile:
    """A resolved profile or recipe."""

    name: str
    where: str  # the file it came from
    description: str
    model: ModelSettings
    data: DataSettings = field(default_factory=DataSettings)
    common: StageSettings = field(default_factory=StageSettings)
    pretrain: StageSettings = field(default_factory=StageSettings)
    finetune_pretrained: StageSettings = field(default_factory=StageSettings)
    finetune_scratch: StageSettings = field(default_factory=StageSettings)
    recipe: dict[str, Any] | None = None  # a recipe's section, as the file gives it (recipes.spec types it)

    def stage(self, name: str) -> StageSettings:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; expected one of {STAGES}")
        return getattr(self, name)

    def to_dict(self, name: bool = True) -> dict[str, Any]:
        """The resolved settings as JSON (what a run records; name=False: a file that loads back to them)."""
        d: dict[str, Any] = {"name": self.name} if name else {}
        d |= {"description": self.description, "model": asdict(self.model), "data": asdict(self.data)}
        for s in ("common", *STAGES):
            d[s] = getattr(self, s).given()
        if self.recipe is not None:
            d["recipe"] = dict(self.recipe)
        return d

    def with_settings(self, **sections: dict[str, Any]) -> "Profile":
        """A copy with some settings changed, checked like a file's: with_settings(pretrain={"max_epochs": 1})."""
        changed = {}
        for name, values in sections.items():
            current = getattr(self, name)
            if name == "recipe":
                changed[name] = {**(current or {}), **values}
                continue
            checked = {k: check_setting(self.where, name, type(current), k, v) for k, v in values.items()}
            changed[name] = replace(current, **checked)
        return replace(self, **changed)


def same_training(recorded: dict[str, Any], profile: Profile) -> bool:
    """Does a run's recorded settings (Profile.to_dict, perhaps written before a setting was added)
    train what `profile` trains? Names and words aside; a setting added since, recorded nowhere,
    counts at its default, so that adding one does not orphan every run that came before."""
    def filled(d: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in d.items() if k not in ("name", "description")}
        for section in ("model", "data"):
            cls = SECTIONS[section]
            defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
            out[section] = defaults | dict(out.get(section, {}))
        return json.loads(json.dumps(out))  # tuples as lists, as a JSON file holds them
    return filled(recorded) == filled(profile.to_dict())


SECTIONS: dict[str, type] = {"model": ModelSettings, "data": DataSettings, "common": StageSettings,
                             **{s: StageSettings for s in STAGES}}
TOP_LEVEL = {"base", "description", "recipe", *SECTIONS}


# ---- loading --------------------------------------------------------------------
# Shipped names given up, and what the same settings are called now, with why: a checkpoint or a
# resumed run that names the old profile means the new name's settings.
RENAMED = {"laptop": "course_keyed", "wordkeys_small": "wordkeys_small_e60"}
WHY_RENAMED = {"laptop": "the name said where it ran, not what it is",
               "wordkeys_small": "the name did not say its 60 epochs; the CPU default is now wordkeys_small_e70"}


def shipped_names(kind: str) -> list[str]:
    """Names of the JSON files shipped in factgpt/configs/<kind>/ (profiles, recipes)."""
    folder = resources.files("factgpt").joinpath("configs", kind)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def _locate(kind: str, name_or_path: str, relative_to: Path | None = None) -> tuple[str, str, str]:
    """(text, where, name) of a shipped file by name, or of a user's file by path."""
    p = Path(name_or_path)
    if relative_to is not None and not p.is_absolute() and (relative_to / p).is_file():
        p = relative_to / p
    if p.suffix == ".json" and p.is_file():
        return read_text(p), str(p), p.stem
    for k in (kind, "profiles", "recipes"):  # a recipe may build on a profile and the other way round
        if name_or_path in shipped_names(k):
            text = resources.files("factgpt").joinpath("configs", k, f"{name_or_path}.json").read_text(encoding="utf-8")
            return text, f"factgpt/configs/{k}/{name_or_path}.json", name_or_path
    if name_or_path in RENAMED:
        raise InputError(f"--{kind[:-1]}", f"{name_or_path!r} is now named {RENAMED[name_or_path]!r} "
                                            f"({WHY_RENAMED[name_or_path]})")
    known = ", ".join(shipped_names(kind))
    raise InputError(f"--{kind[:-1]}", f"unknown {kind[:-1]} {name_or_path!r}; known: {known}")


def _raw(kind: str, name_or_path: str, relative_to: Path | None = None,
         seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], str, str]:
    """The file's settings merged over its base's (recursively); (settings, where, name)."""
    text, where, name = _locate(kind, name_or_path, relative_to)
    if where in seen:
        raise InputError(where, f"its chain of bases comes back to itself ({' → '.join((*seen, where))})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(where, f"invalid JSON: {e.msg}", e.lineno) from None
    if not isinstance(data, dict):
        raise InputError(where, "a configuration file is a JSON object")
    unknown = set(data) - TOP_LEVEL
    if unknown:
        raise InputError(where, f"unknown section {sorted(unknown)[0]!r}; known: {', '.join(sorted(TOP_LEVEL))}")
    for s in (*SECTIONS, "recipe"):
        if s in data and not isinstance(data[s], dict):
            raise InputError(where, f"{s}: expected an object of settings, got {json.dumps(data[s])}")
    base = data.pop("base", None)
    if base is None:
        return data, where, name
    if not isinstance(base, str):
        raise InputError(where, f"base: expected the name or path of a profile or recipe, got {json.dumps(base)}")
    parent, _, _ = _raw(kind, base, Path(where).parent if Path(where).is_file() else None, (*seen, where))
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in parent.items()}
    for k, v in data.items():
        merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) else v
    return merged, where, name


def _expected(typ: Any) -> tuple[tuple[type, ...], bool, int | None, str]:
    """(accepted JSON types, None allowed, tuple length, words for an error) of a field's type."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(typ) if a is not type(None)]
        accepted, _, n, words = _expected(inner[0])
        return accepted, True, n, words
    if typing.get_origin(typ) is tuple:
        n = len(typing.get_args(typ))
        return (list,), False, n, f"a list of {n} numbers"
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if typ not in words:
        raise TypeError(f"unsupported setting type {typ!r}")
    return ((int, float) if typ is float else (typ,)), False, None, words[typ]


def check_setting(where: str, section: str, cls: type, key: str, value: Any) -> Any:
    """The value, converted to the setting's type (an integer where a number is expected becomes a float)."""
    hints = typing.get_type_hints(cls)
    if key not in hints:
        raise InputError(where, f"{section}.{key}: unknown setting; known: {', '.join(f.name for f in fields(cls))}")
    accepted, nullable, n, words = _expected(hints[key])
    if value is None and nullable:
        return None
    # bool is an int in Python; a JSON true is not a number here
    ok = isinstance(value, accepted) and (bool in accepted or not isinstance(value, bool))
    if ok and n is not None:
        ok = len(value) == n and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
    if not ok:
        raise InputError(where, f"{section}.{key}: expected {words}, got {json.dumps(value)}")
    if n is not None:
        return tuple(float(x) for x in value)
    return float(value) if accepted == (int, float) else value


def _section(where: str, name: str, cls: type, values: dict[str, Any]) -> Any:
    checked = {k: check_setting(where, name, cls, k, v) for k, v in values.items()}
    missing = [f.name for f in fields(cls)
               if f.name not in checked and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise InputError(where, f"{name}.{missing[0]}: missing (set it here or in a base)")
    return cls(**checked)


def load(kind: str, name_or_path: str) -> Profile:
    """A shipped profile/recipe by name, or a user's file by path, resolved and checked."""
    data, where, name = _raw(kind, name_or_path)
    if "model" not in data:
        raise InputError(where, "model: missing (set it here or in a base)")
    desc = data.get("description", "")
    if not isinstance(desc, str):
        raise InputError(where, f"description: expected a string, got {json.dumps(desc)}")
    sections = {s: _section(where, s, cls, data.get(s, {})) for s, cls in SECTIONS.items()}
    if sections["data"].birth_placed and not sections["data"].birth_front:
        raise InputError(where, "data.birth_placed: needs data.birth_front (it chooses which birth clause is moved)")
    return Profile(name=name, where=where, description=desc, recipe=data.get("recipe"), **sections)
