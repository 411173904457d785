"""The experiment layer: what every experiment reads, how it finetunes and scores, what it records.

`factgpt reproduce` (a study or a recipe), `factgpt curve`, `factgpt abstention` and the
bench sweeps are built on these pieces, so that they read the same data, hold out the same
slice, finetune and score alike, and record where they ran in one shape:

  DataBundle    the corpus, the three question files and the held-out slice of the training
                pairs (heldout.py), loaded and checked once per process
  finetune_on   finetuning a model on the training pairs the slice leaves, as the profile
                finetunes a pretrained model (a curve's probe, a recipe, a sweep)
  Score         right answers out of questions, from answers and the gold rows
  provenance    what a run records about how and where it ran: the commit (with -dirty for
                uncommitted changes), device, torch, python, command; each record also names
                its own format (FORMATS), so that a reader can tell the versions apart
  unfinished_run  the record a --resume goes on with: a study's, a recipe's or a curve's,
                marked "partial" until its plan is done (each piece it ran in is listed
                with its command and commit)

The stages themselves (pretrain_stage, finetune_stage, train_stage) are pipeline.py's.
"""

from __future__ import annotations

import functools
import json
import platform
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .batches import TensorExamples
from .config import DataSettings, Profile
from .datasets import QA, NameDataset
from .evaluate import accuracy
from .errors import InputError
from .fileio import bundled_path, read_text
from .heldout import split_heldout, to_tsv
from .lines import pretraining_lines
from .model import GPT
from .pipeline import Corpus, load_corpus, load_qa, stage_config, train_stage
from .runinfo import device_name, git_commit
from .train import Trainer

# The version of each record a run writes; a reader refuses a format it does not know.
FORMATS = {"study": "factgpt-study-1", "recipe": "factgpt-recipe-1", "curve": "factgpt-curve-2",
           "abstention": "factgpt-abstention-1"}
HELDOUT_N = 300


@dataclass(frozen=True)
class DataBundle:
    """The data of every experiment: the pretraining corpus and the question files, checked against
    the vocabulary and block size; the training pairs split into the held-out slice and the rest."""

    corpus: Corpus
    train: list[QA]  # every training pair, in file order
    dev: list[QA]
    test: list[QA]  # questions without answers
    finetune: list[QA]  # the training pairs minus the held-out slice
    heldout: list[QA]  # the slice: chooses settings; dev never does
    block_size: int

    @staticmethod
    def load(block_size: int = 128, heldout_n: int = HELDOUT_N) -> "DataBundle":
        return _bundle(block_size, heldout_n)

    @property
    def vocab(self):
        return self.corpus.vocab

    def lines(self, data: DataSettings) -> dict[str, str]:
        """Each person's line as a profile's pretraining shows it (changed, cut), by name."""
        return pretraining_lines(self.corpus.text, data)

    def finetune_examples(self) -> TensorExamples:
        """The finetuning batches of the pairs the slice leaves."""
        return TensorExamples(NameDataset(self.vocab, to_tsv(self.finetune), self.block_size))


@functools.lru_cache(maxsize=4)
def _bundle(block_size: int, heldout_n: int) -> DataBundle:
    corpus = load_corpus(bundled_path("wiki.txt"))
    train = load_qa(bundled_path("birth_places_train.tsv"), corpus.vocab, True, block_size)
    dev = load_qa(bundled_path("birth_dev.tsv"), corpus.vocab, True, block_size)
    test = load_qa(bundled_path("birth_test_inputs.tsv"), corpus.vocab, False, block_size)
    # dev only keeps the slice apart (one training person is also a dev person); it never scores here
    finetune, held = split_heldout(train, corpus.text, n=heldout_n, exclude={r.question for r in dev})
    return DataBundle(corpus, train, dev, test, finetune, held, block_size)


def finetune_on(model: GPT, bundle: DataBundle, profile: Profile, seed: int, device: torch.device,
                desc: str = "finetune", quiet: bool = True, **overrides: Any) -> Trainer:
    """Finetune `model` in place on the training pairs minus the held-out slice, with the profile's
    finetune_pretrained settings (overrides: a sweep's max_epochs, learning_rate, batch_size);
    the trainer (its model, settings and loss history)."""
    cfg = stage_config(profile, "finetune_pretrained", bundle.corpus.n_docs, seed=seed, **overrides)
    trainer, _ = train_stage(model, bundle.finetune_examples(), cfg, device, None, bundle.vocab, desc, quiet=quiet)
    return trainer


@dataclass(frozen=True)
class Score:
    """Right answers out of questions (evaluate.accuracy's rule: exact match with the gold answer)."""

    correct: int
    total: int

    @classmethod
    def of(cls, rows: Sequence[QA], answers: Sequence[str]) -> "Score":
        return cls(*accuracy(list(rows), list(answers)))

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"correct": self.correct, "total": self.total, "accuracy": self.accuracy}


def unfinished_run(out: str | None, record: str = "results.json") -> tuple[Path, dict[str, Any]]:
    """(path, record) of the stopped run a --resume goes on with: out/<record> (a study's or a
    recipe's results.json, a curve's curve.json), marked partial. Each command then checks that
    the record is of what it is asked to run."""
    if out is None:
        raise InputError("--resume", "needs --out: the folder of the run to go on with")
    path = Path(out) / record
    if not path.is_file():
        raise InputError(path, "no run to resume here (start it without --resume)")
    try:
        rec = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(path, f"not a run's {record}: {e.msg}", e.lineno) from None
    if not isinstance(rec, dict) or not rec.get("partial"):
        raise InputError(path, "this run is complete: nothing to resume")
    if "merged_from" in rec:  # its pieces ran in other folders, which hold their training states
        raise InputError(path, "a merged record cannot be resumed: resume each run it merges, then merge again")
    return path, rec


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as a user would type it again."""
    return "factgpt " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def provenance(device: torch.device, command: str | None = None, commit: str | None = None) -> dict[str, Any]:
    """How and where a run ran, as every record holds it. Pass the commit read when the run started
    (git_commit()) so that a change made while it ran does not rewrite its history."""
    out = {"commit": commit or git_commit(), "device": device_name(device),
           "torch": torch.__version__, "python": platform.python_version()}
    if command is not None:
        out["command"] = command
    return out
