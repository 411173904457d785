"""Shared fixtures: the bundled data, its vocabulary, small models, and checkers.

Everything expensive is session-scoped so that hypothesis tests can use it
(hypothesis refuses function-scoped fixtures) and so that the suite stays
fast on a 2-core CPU.
"""

from __future__ import annotations

import pytest
import torch

from factgpt.datasets import parse_tsv
from factgpt.fileio import bundled_path, read_text
from factgpt.model import GPT, GPTConfig
from factgpt.vocab import MASK, PAD, Vocab


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module's tests.

    The machine has 2 cores shared with other work; two OpenMP threads that
    have to share a core with another busy process were measured 35x slower
    than one thread. Modules opt in with `pytestmark = pytest.mark.usefixtures("single_thread")`.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def wiki_text() -> str:
    return read_text(bundled_path("wiki.txt"))


@pytest.fixture(scope="session")
def vocab(wiki_text) -> Vocab:
    return Vocab.from_corpus(wiki_text, "wiki.txt")


@pytest.fixture(scope="session")
def train_tsv_text() -> str:
    return read_text(bundled_path("birth_places_train.tsv"))


@pytest.fixture(scope="session")
def dev_rows():
    return parse_tsv(read_text(bundled_path("birth_dev.tsv")), "birth_dev.tsv", need_answers=True)


def small_config(vocab: Vocab, variant: str = "vanilla", dropout: float = 0.0, **kw) -> GPTConfig:
    base = dict(vocab_size=len(vocab), n_layer=2, n_head=4, n_embd=64, variant=variant,
                embd_pdrop=dropout, resid_pdrop=dropout, attn_pdrop=dropout)
    base.update(kw)
    return GPTConfig(**base)


@pytest.fixture(scope="session")
def make_model(vocab):
    """make_model(variant, seed=0, dropout=0.0, **config) -> a small GPT."""

    def make(variant: str = "vanilla", seed: int = 0, dropout: float = 0.0, **kw) -> GPT:
        torch.manual_seed(seed)
        return GPT(small_config(vocab, variant, dropout, **kw))

    return make


def unpack(packed, values: torch.Tensor, i: int) -> torch.Tensor:
    """The entries of `values` (aligned with packed.x) that belong to example i of a packed batch, in order."""
    return values[packed.seg == i]


def split_corruption(ids, vocab: Vocab, block_size: int):
    """Check the shape of one corrupted string and return (prefix, suffix, masked).

    `prefix ⁇ suffix ⁇ masked □…`: exactly two MASKs, padding only at the end.
    """
    s = vocab.decode(ids)
    assert len(s) == block_size
    body = s.rstrip(PAD)
    assert PAD not in body, "padding inside the example"
    assert body.count(MASK) == 2, f"expected two MASKs in {body!r}"
    prefix, suffix, masked = body.split(MASK)
    return prefix, suffix, masked


@pytest.fixture(scope="session")
def check_corruption():
    """check(ids, doc, vocab, block_size) -> (trunc, start, mask_len), asserting the span-corruption invariants."""

    def check(ids, doc: str, vocab: Vocab, block_size: int):
        prefix, suffix, masked = split_corruption(ids, vocab, block_size)
        restored = prefix + masked + suffix
        assert doc.startswith(restored), "moving the masked span back does not give a prefix of the document"
        trunc = len(restored)
        assert min(4, len(doc)) <= trunc <= min(len(doc), int(block_size * 7 / 8))
        assert len(masked) >= 1
        # the mask length is drawn on [1, max(1, L//2 - 1)]
        assert len(masked) <= max(1, trunc // 2 - 1)
        return trunc, len(prefix), len(masked)

    return check


# A study profile small enough for tests: 1 layer, 32-d, one epoch a stage.
TINY_PROFILE = {
    "base": "course",
    "description": "test profile: 1 layer, 32-d, one epoch a stage",
    "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 128},
    "pretrain": {"max_epochs": 1, "batch_size": 128, "learning_rate": 6e-3},
    "finetune_pretrained": {"max_epochs": 1, "batch_size": 256, "learning_rate": 6e-4},
    "finetune_scratch": {"max_epochs": 1, "batch_size": 256, "learning_rate": 6e-4},
}


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """One tiny `factgpt reproduce` run, shared by the tests that need a study.

    It runs as the README's command does, without --out, from a folder that holds
    a committed-looking results/: the run must go to a new runs/ folder instead.
    Returns the run's folder, its arguments, exit code, output and that cwd.
    """
    import contextlib
    import io
    import json
    import os

    from factgpt.cli import main

    cwd = tmp_path_factory.mktemp("clone")
    (cwd / "results" / "tiny").mkdir(parents=True)
    (cwd / "results" / "tiny" / "results.json").write_text('{"committed": true}\n')
    prof = cwd / "tiny.json"
    prof.write_text(json.dumps(TINY_PROFILE))
    args = ["reproduce", "--profile", str(prof), "--quiet", "--variants", "vanilla", "synthesizer", "--seeds", "0",
            "--device", "cpu", "--precision", "fp32"]  # the analysis decodes in fp32: the same predictions
    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_threads = os.getcwd(), torch.get_num_threads()
    torch.set_num_threads(1)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    finally:
        os.chdir(old_cwd)
        torch.set_num_threads(old_threads)
    runs = sorted((cwd / "runs").glob("tiny-*")) if (cwd / "runs").is_dir() else []
    return {"dir": runs[0] if len(runs) == 1 else None, "runs": runs, "args": args, "rc": rc,
            "out": out.getvalue(), "err": err.getvalue(), "cwd": cwd}
