"""How long one seed of a study will take here: every stage timed for a few steps, then extrapolated.

A stage's batches have a fixed size and length, so its steps cost about the
same from first to last. Two steps were too few (two estimates 10 s apart
differed by 30%), and one warm-up step then four timed ones too few for a
small model, whose steps are short (10.9 minutes estimated for a 7-minute
pretraining): each stage here gets two warm-up steps, then the median of at
least four timed steps covering at least two seconds. Decoding is timed on a slice of the questions.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from .config import Profile
from .datasets import QA
from .fileio import bundled_path
from .model import GPT
from .pipeline import Corpus, evaluate_rows, finetune_source, model_config, pretrain_source, stage_config
from .train import Trainer

WARMUP_STEPS = 2  # the first steps allocate the optimizer's state and choose kernels
TIMED_STEPS = 4  # at least this many steps are timed...
TIMED_SECONDS = 2.0  # ...and more, up to MAX_TIMED_STEPS, until this much time is covered: a small
MAX_TIMED_STEPS = 16  # model's step is short enough for the machine's hiccups to move a median of 4


@dataclass(frozen=True)
class SeedEstimate:
    """Seconds of one seed, stage by stage; `variants` pretrainings and finetunings each."""

    pretrain: dict[str, float]  # per variant
    finetune_pretrained: float
    finetune_scratch: float
    evaluate: float  # all rows' dev and test questions

    @property
    def total(self) -> float:
        return (sum(self.pretrain.values()) + len(self.pretrain) * self.finetune_pretrained
                + self.finetune_scratch + self.evaluate)

    def describe(self) -> str:
        pre = ", ".join(f"pretrain {v} {s / 60:.1f}" for v, s in self.pretrain.items() if s)
        return (f"{pre + ', ' if pre else ''}finetune {self.finetune_pretrained / 60:.1f} each, without "
                f"pretraining {self.finetune_scratch / 60:.1f}, evaluation {self.evaluate / 60:.1f} minutes")


def _batches(tr: Trainer):
    """The stage's batches, epoch after epoch (a finetuning epoch can be shorter than the warm-up)."""
    while True:
        empty = True
        for batch in tr.source.epoch(tr.cfg.batch_size, tr.gen, tr.cfg.shuffle):
            empty = False
            yield batch
        if empty:
            return


def _median_step_seconds(tr: Trainer) -> float:
    batches = _batches(tr)
    times: list[float] = []
    for i in range(WARMUP_STEPS + MAX_TIMED_STEPS):
        batch = next(batches, None)
        if batch is None:
            break
        t0 = time.perf_counter()
        tr.step(batch)
        tr.flush()
        if i >= WARMUP_STEPS:
            times.append(time.perf_counter() - t0)
            if len(times) >= TIMED_STEPS and sum(times) >= TIMED_SECONDS:
                break
    return statistics.median(times) if times else 0.0


def stage_seconds(prof: Profile, corpus: Corpus, stage: str, variant: str, device: torch.device,
                  seed: int = 0, precision: str = "auto") -> float:
    """One stage's training time, extrapolated from its median step."""
    mcfg = model_config(prof, corpus.vocab, variant)
    cfg = stage_config(prof, stage, corpus.n_docs, seed=seed, precision=precision)
    if stage == "pretrain":
        src = pretrain_source(corpus, mcfg.block_size, seed, prof.data)
    else:
        src = finetune_source(corpus, bundled_path("birth_places_train.tsv"), mcfg.block_size)
    tr = Trainer(GPT(mcfg), src, cfg, device)
    return _median_step_seconds(tr) * tr.total_steps


def estimate_seed(prof: Profile, corpus: Corpus, variants: list[str], device: torch.device,
                  questions: list[QA], seed: int = 0, precision: str = "auto", pretrained: bool = False,
                  scratch_given: bool = False) -> SeedEstimate:
    """Every stage of one seed of `factgpt reproduce`; `questions` are those each row answers.
    pretrained: the pretrainings are loaded (they cost nothing); scratch_given: so is the model
    without pretraining."""
    pre = {v: 0.0 if pretrained else stage_seconds(prof, corpus, "pretrain", v, device, seed, precision)
           for v in variants}
    ft = stage_seconds(prof, corpus, "finetune_pretrained", variants[0], device, seed, precision)
    scratch = 0.0 if scratch_given else stage_seconds(prof, corpus, "finetune_scratch", "vanilla", device, seed,
                                                      precision)
    model = GPT(model_config(prof, corpus.vocab, "vanilla")).to(device)
    sample = questions[:64]
    t0 = time.perf_counter()
    evaluate_rows(model, corpus.vocab, sample)
    per_question = (time.perf_counter() - t0) / max(1, len(sample))
    rows = 1 + len(variants)  # London costs nothing
    return SeedEstimate(pre, ft, scratch, per_question * len(questions) * rows)
