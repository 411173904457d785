"""The study's three stages as functions: pretrain, finetune, evaluate.

The command line and `factgpt reproduce` both call these, so a single
command and the whole study do exactly the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .batches import BatchedCorruption, DatasetSource, TensorExamples
from .checkpoint import load_model, save_model
from .distributed import is_main
from .datasets import QA, CharCorruptionDataset, NameDataset, encode_qa, parse_tsv
from .errors import InputError
from .evaluate import Prediction, accuracy, predict, predict_plain
from .fileio import read_text
from .model import GPT, GPTConfig
from .train import Trainer, TrainConfig, write_history
from .vocab import Vocab
from .wordkeys import WordKeys

STAGES = ("pretrain", "finetune_pretrained", "finetune_scratch")


@dataclass
class Corpus:
    path: Path
    text: str
    vocab: Vocab


def load_corpus(path: str | Path) -> Corpus:
    text = read_text(path)
    vocab = Vocab.from_corpus(text, str(path))
    return Corpus(Path(path), text, vocab)


def load_qa(path: str | Path, vocab: Vocab, need_answers: bool, block_size: int) -> list[QA]:
    """Parse a TSV and check every line against the vocabulary and block size."""
    rows = parse_tsv(read_text(path), str(path), need_answers)
    for r in rows:
        ids = encode_qa(vocab, QA(r.question, None, r.line), block_size, str(path))
        if len(ids) >= block_size:
            raise InputError(path, f"question of {len(r.question)} characters leaves no room for an answer "
                                   f"in the block size {block_size}", r.line)
    return rows


# ---- profiles -------------------------------------------------------------------
def bundled_names(folder: str) -> list[str]:
    """Names of the JSON files shipped in factgpt/configs/<folder>/ (profiles, recipes)."""
    return sorted(p.name[:-5] for p in resources.files("factgpt").joinpath("configs", folder).iterdir()
                  if p.name.endswith(".json"))


def load_named_json(folder: str, kind: str, name_or_path: str, required: tuple[str, ...]) -> tuple[dict, str]:
    """A shipped JSON file by name, or a user's JSON file by path; (settings with "name", where it came from).

    Unknown names, invalid JSON and missing sections are refused with one line.
    """
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        text, where, name = read_text(p), str(p), p.stem
    elif name_or_path in bundled_names(folder):
        text = resources.files("factgpt").joinpath("configs", folder, f"{name_or_path}.json").read_text(encoding="utf-8")
        where, name = f"factgpt/configs/{folder}/{name_or_path}.json", name_or_path
    else:
        raise InputError(f"--{kind}", f"unknown {kind} {name_or_path!r}; known: {', '.join(bundled_names(folder))}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(where, f"invalid JSON: {e.msg}", e.lineno) from None
    if not isinstance(data, dict):
        raise InputError(where, f"a {kind} is a JSON object")
    for key in required:
        if key not in data:
            raise InputError(where, f"{kind} lacks the {key!r} section")
    data.setdefault("name", name)
    return data, where


def profile_names() -> list[str]:
    return bundled_names("profiles")


def load_profile(name_or_path: str) -> dict[str, Any]:
    return load_named_json("profiles", "profile", name_or_path, ("model", *STAGES))[0]


def stage_config(profile: dict[str, Any], stage: str, n_pretrain_docs: int, **overrides: Any) -> TrainConfig:
    """The TrainConfig of one stage: the profile's common settings, its stage settings, then overrides."""
    merged = {**profile.get("common", {}), **profile[stage]}
    per_example = merged.pop("final_tokens_per_pretrain_example", None)
    if per_example is not None and "final_tokens" not in merged:
        merged["final_tokens"] = per_example * n_pretrain_docs
    merged.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(merged) - known
    if unknown:
        raise InputError(f"profile {profile.get('name')}", f"unknown training settings {sorted(unknown)}")
    return TrainConfig(**merged)


def model_config(profile: dict[str, Any], vocab: Vocab, variant: str, **overrides: Any) -> GPTConfig:
    cfg = {**profile["model"], **{k: v for k, v in overrides.items() if v is not None}}
    if cfg.get("word_keys") and not cfg.get("letters"):
        cfg["letters"] = WordKeys.letters_of(vocab)
    return GPTConfig(vocab_size=len(vocab), variant=variant, **cfg)


# ---- stages ---------------------------------------------------------------------
def pretrain_source(corpus: Corpus, block_size: int, fast: bool, seed: int, max_chars: int | None = None):
    """Span-corruption batches; max_chars cuts every line to its first characters (a profile's data.max_chars)."""
    if fast:
        return BatchedCorruption(corpus.text, corpus.vocab, block_size, max_chars=max_chars)
    if max_chars is not None:
        raise InputError("data.max_chars", "cutting lines is implemented on the fast path only")
    return DatasetSource(CharCorruptionDataset(corpus.text, block_size, corpus.vocab, seed=seed, where=str(corpus.path)))


def finetune_source(corpus: Corpus, tsv_path: str | Path, block_size: int, fast: bool):
    ds = NameDataset(corpus.vocab, read_text(tsv_path), block_size, where=str(tsv_path))
    return TensorExamples(ds) if fast else DatasetSource(ds)


def train_stage(model: GPT, source, cfg: TrainConfig, device: torch.device, out_path: str | Path | None,
                vocab: Vocab, desc: str, quiet: bool = False, compile: bool = False,
                resume: bool = False, time_limit_s: float | None = None, save_every: int | None = None,
                extra_meta: dict | None = None, on_epoch_end=None) -> tuple[Trainer, str]:
    trainer = Trainer(model, source, cfg, device, compile=compile)
    state = f"{out_path}.state" if out_path else None
    if resume:
        if not state or not Path(state).is_file():
            raise InputError(state or "--resume", "no training state to resume from (it is written next to --writing_params_path)")
        trainer.load_state(state)
    status = trainer.train(progress_bar=not quiet, desc=desc, time_limit_s=time_limit_s,
                           state_path=state if (save_every or time_limit_s or resume) else None,
                           save_every=save_every, on_epoch_end=on_epoch_end)
    if out_path and status == "done" and is_main():
        save_model(out_path, trainer.model, vocab, {"stage": desc, "train_config": trainer.cfg.__dict__ | {},
                                                    "steps": trainer.progress.step, **(extra_meta or {})})
        write_history(f"{out_path}.history.json", trainer)
    return trainer, status


def evaluate_rows(model: GPT, vocab: Vocab, rows: list[QA], fast: bool = True, precision: str = "fp32") -> list[Prediction]:
    qs = [r.question for r in rows]
    return predict(model, vocab, qs, precision=precision) if fast else predict_plain(model, vocab, qs, precision=precision)


def score(rows: list[QA], preds: list[Prediction]) -> tuple[int, int] | None:
    if rows[0].answer is None:
        return None
    return accuracy(rows, [p.text for p in preds])


def load_for(path: str | Path, corpus: Corpus, variant: str | None, device: torch.device,
             config: dict | None = None) -> tuple[GPT, dict]:
    return load_model(path, vocab=corpus.vocab, variant=variant, config=config, device=device)
