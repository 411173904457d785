"""The study's three stages as functions: pretrain, finetune, evaluate.

The command line and `factgpt reproduce` both call these, so a single
command and the whole study do exactly the same thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .config import DataSettings, Profile, shipped_names
from .config import load as load_config
from .batches import BatchedCorruption, DatasetSource, TensorExamples
from .checkpoint import load_model, save_model
from .distributed import is_main
from .datasets import QA, CharCorruptionDataset, NameDataset, documents, encode_qa, parse_tsv
from .errors import InputError
from .evaluate import Prediction, accuracy, predict, predict_reference
from .fileio import read_text
from .lines import change_lines
from .model import GPT, GPTConfig
from .train import Trainer, TrainConfig, write_history
from .vocab import Vocab
from .wordkeys import WordKeys



@dataclass
class Corpus:
    path: Path
    text: str
    vocab: Vocab

    @property
    def n_docs(self) -> int:
        """Lines of the corpus: the schedule's final_tokens_per_pretrain_example counts in them."""
        return len(documents(self.text))


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


# ---- profiles ---------------------------------------------------------------------
def profile_names() -> list[str]:
    return shipped_names("profiles")


def load_profile(name_or_path: str) -> Profile:
    return load_config("profiles", name_or_path)


def stage_config(profile: Profile, stage: str, n_pretrain_docs: int, **overrides: Any) -> TrainConfig:
    """The TrainConfig of one stage: the profile's common settings, its stage settings, then overrides."""
    merged = {**profile.common.given(), **profile.stage(stage).given()}
    per_example = merged.pop("final_tokens_per_pretrain_example", None)
    if per_example is not None and "final_tokens" not in merged:
        merged["final_tokens"] = per_example * n_pretrain_docs
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**merged)


def model_config(profile: Profile, vocab: Vocab, variant: str, **overrides: Any) -> GPTConfig:
    cfg = {**asdict(profile.model), **{k: v for k, v in overrides.items() if v is not None}}
    if cfg.get("word_keys") and not cfg.get("letters"):
        cfg["letters"] = WordKeys.letters_of(vocab)
    return GPTConfig(vocab_size=len(vocab), variant=variant, **cfg)


# ---- stages ---------------------------------------------------------------------
def pretrain_source(corpus: Corpus, block_size: int, seed: int, data: DataSettings = DataSettings(), *,
                    reference: bool = False):
    """Span-corruption batches of the lines as the profile's data section changes and cuts them."""
    text = change_lines(corpus.text, data)
    if not reference:
        return BatchedCorruption(text, corpus.vocab, block_size, max_chars=data.max_chars)
    if data.max_chars is not None:
        raise InputError("data.max_chars", "cutting lines is implemented on the fast path only (not with --reference)")
    return DatasetSource(CharCorruptionDataset(text, block_size, corpus.vocab, seed=seed, where=str(corpus.path)))


def finetune_source(corpus: Corpus, tsv_path: str | Path, block_size: int, *, reference: bool = False):
    ds = NameDataset(corpus.vocab, read_text(tsv_path), block_size, where=str(tsv_path))
    return DatasetSource(ds) if reference else TensorExamples(ds)


def train_stage(model: GPT, source, cfg: TrainConfig, device: torch.device, out_path: str | Path | None,
                vocab: Vocab, desc: str, quiet: bool = False, compile: bool = False,
                resume: bool = False, time_limit_s: float | None = None, save_every: int | None = None,
                extra_meta: dict | None = None, on_epoch_end=None,
                time_left_s: float | None = None) -> tuple[Trainer, str]:
    """time_limit_s counts the stage's whole training, every piece of it; time_left_s only from now."""
    trainer = Trainer(model, source, cfg, device, compile=compile)
    state = f"{out_path}.state" if out_path else None
    if resume:
        if not state or not Path(state).is_file():
            raise InputError(state or "--resume", "no training state to resume from (it is written next to --writing_params_path)")
        trainer.load_state(state)
    if time_left_s is not None:
        time_limit_s = trainer.progress.elapsed + time_left_s
    status = trainer.train(progress_bar=not quiet, desc=desc, time_limit_s=time_limit_s,
                           state_path=state if (save_every or time_limit_s is not None or resume) else None,
                           save_every=save_every, on_epoch_end=on_epoch_end)
    if out_path and status == "done" and is_main():
        save_model(out_path, trainer.model, vocab, {"stage": desc, "train_config": trainer.cfg.__dict__ | {},
                                                    "steps": trainer.progress.step, **(extra_meta or {})})
        write_history(f"{out_path}.history.json", trainer)
    return trainer, status


def _profile_meta(profile: Profile) -> dict[str, Any]:
    """What a checkpoint records of its profile: its name and how it changed and cut the lines."""
    return {"profile": profile.name, "data": asdict(profile.data)}


def pretrain_stage(profile: Profile, corpus: Corpus, variant: str, device: torch.device, out_path: str | Path | None,
                   desc: str, *, reference: bool = False, quiet: bool = False, train_overrides: dict | None = None,
                   model_overrides: dict | None = None, **run: Any) -> tuple[Trainer, str]:
    """Pretraining as `factgpt pretrain` and `factgpt reproduce` run it: the profile's model, seeded,
    on span corruption of the (cut) lines. run: compile, resume, time_limit_s, save_every, extra_meta."""
    cfg = stage_config(profile, "pretrain", corpus.n_docs, **(train_overrides or {}))
    torch.manual_seed(cfg.seed)
    model = GPT(model_config(profile, corpus.vocab, variant, **(model_overrides or {})))
    src = pretrain_source(corpus, model.config.block_size, cfg.seed, profile.data, reference=reference)
    run["extra_meta"] = {**_profile_meta(profile), **(run.get("extra_meta") or {})}
    return train_stage(model, src, cfg, device, out_path, corpus.vocab, desc, quiet, **run)


def finetune_stage(profile: Profile, corpus: Corpus, tsv_path: str | Path, variant: str, device: torch.device,
                   out_path: str | Path | None, desc: str, *, model: GPT | None = None, reference: bool = False,
                   quiet: bool = False, train_overrides: dict | None = None, model_overrides: dict | None = None,
                   **run: Any) -> tuple[Trainer, str]:
    """Finetuning as `factgpt finetune` and `factgpt reproduce` run it: a pretrained model
    (finetune_pretrained) or, without one, a new seeded model (finetune_scratch)."""
    stage = "finetune_pretrained" if model is not None else "finetune_scratch"
    cfg = stage_config(profile, stage, corpus.n_docs, **(train_overrides or {}))
    torch.manual_seed(cfg.seed)
    if model is None:
        model = GPT(model_config(profile, corpus.vocab, variant, **(model_overrides or {})))
    src = finetune_source(corpus, tsv_path, model.config.block_size, reference=reference)
    run["extra_meta"] = {**_profile_meta(profile), **(run.get("extra_meta") or {})}
    return train_stage(model, src, cfg, device, out_path, corpus.vocab, desc, quiet, **run)


def evaluate_rows(model: GPT, vocab: Vocab, rows: list[QA], reference: bool = False, precision: str = "fp32") -> list[Prediction]:
    qs = [r.question for r in rows]
    if reference:
        return predict_reference(model, vocab, qs, precision=precision)
    return predict(model, vocab, qs, precision=precision)


def score(rows: list[QA], preds: list[Prediction]) -> tuple[int, int] | None:
    if rows[0].answer is None:
        return None
    return accuracy(rows, [p.text for p in preds])


def load_for(path: str | Path, corpus: Corpus, variant: str | None, device: torch.device,
             config: dict | None = None) -> tuple[GPT, dict]:
    return load_model(path, vocab=corpus.vocab, variant=variant, config=config, device=device)
