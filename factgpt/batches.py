"""Fast batches: span corruption as tensor operations, and packing.

The reference datasets (datasets.py) build one example at a time in Python.
Here a whole batch is drawn at once with the same distributions, and then
several examples are packed into one row, each with its own positions
(restarting at 0) and a segment id so that attention stays inside the
example. Packing removes the padding (about half of a pretraining batch)
without changing any example's logits or the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader

from .datasets import NameDataset, documents
from .model import Layout
from .vocab import Vocab


@dataclass
class Batch:
    """x, y: (rows, T) token ids; PAD targets carry no loss.

    pos and seg are None for a plain padded batch (one example a row, positions
    0..T-1). For a packed batch, pos is each token's position inside its example
    and seg the example's index in the batch (-1 for the row's padding).
    n_examples is how many examples the batch holds, packed or not: the
    learning-rate schedule counts n_examples × (block_size − 1) tokens a step.
    read_only: (rows, T) bool, positions whose word keys are read but not
    trained (a recipe's question-answer examples; None: every position trains).
    """

    x: torch.Tensor
    y: torch.Tensor
    n_examples: int
    pos: torch.Tensor | None = None
    seg: torch.Tensor | None = None
    read_only: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        mv = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(mv(self.x), mv(self.y), self.n_examples, mv(self.pos), mv(self.seg), mv(self.read_only))

    @property
    def layout(self) -> Layout:
        return Layout(self.pos, self.seg, self.read_only)

    def real_tokens(self) -> int:
        return int((self.y != 0).sum())


class BatchedCorruption:
    """Draws span-corruption batches of a corpus with tensor operations.

    Same distribution as CharCorruptionDataset: truncated length uniform on
    [4, int(block_size*7/8)] capped at the document's length, mask length
    uniform on [1, max(1, L//2 - 1)], mask start uniform where it fits.
    """

    def __init__(self, text: str, vocab: Vocab, block_size: int, max_chars: int | None = None):
        """max_chars: cut every document to its first max_chars characters first (None: as the course)."""
        self.vocab, self.block_size = vocab, block_size
        self.max_trunc = int(block_size * 7 / 8)
        if max_chars is not None:
            docs_cut = [d[:max_chars] for d in documents(text)]
            text = "\n".join(docs_cut)
        docs = documents(text)
        # Only the first max_trunc characters of a document can ever be shown.
        self.lens = torch.tensor([min(len(d), self.max_trunc) for d in docs], dtype=torch.long)
        self.docs = torch.zeros(len(docs), self.max_trunc, dtype=torch.long)
        for i, d in enumerate(docs):
            ids = vocab.encode(d[: self.max_trunc])
            self.docs[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.lens)

    def draw(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(truncated length, mask start, mask length) for the documents idx."""
        n = len(idx)
        trunc = torch.minimum(torch.randint(4, self.max_trunc + 1, (n,), generator=gen), self.lens[idx])
        hi = torch.clamp(trunc // 2 - 1, min=1)
        mask_len = torch.minimum(1 + (torch.rand(n, generator=gen, dtype=torch.float64) * hi).long(), trunc)
        start = (torch.rand(n, generator=gen, dtype=torch.float64) * (trunc - mask_len + 1)).long()
        return trunc, start, mask_len

    def build(self, idx: torch.Tensor, trunc: torch.Tensor, start: torch.Tensor, mask_len: torch.Tensor) -> torch.Tensor:
        """The corrupted strings `prefix ⁇ suffix ⁇ masked □…` as (n, block_size) ids."""
        k = torch.arange(self.block_size)[None, :]
        start, mask_len, trunc = start[:, None], mask_len[:, None], trunc[:, None]
        suf_end = trunc - mask_len + 1  # index of the second ⁇
        # Where in the document each output column reads from (if it reads at all).
        src = torch.where(k < start, k, torch.where(k < suf_end, k - 1 + mask_len, k - suf_end - 1 + start))
        doc = self.docs[idx].gather(1, src.clamp(0, self.max_trunc - 1))
        out = torch.where((k == start) | (k == suf_end), self.vocab.mask_id, doc)
        return torch.where(k > suf_end + mask_len, self.vocab.pad_id, out)

    def batch(self, idx: torch.Tensor, gen: torch.Generator) -> Batch:
        s = self.build(idx, *self.draw(idx, gen))
        return Batch(s[:, :-1], s[:, 1:], len(idx))

    def epoch(self, batch_size: int, gen: torch.Generator, shuffle: bool = False) -> Iterator[Batch]:
        order = torch.randperm(len(self), generator=gen) if shuffle else torch.arange(len(self))
        for i in range(0, len(order), batch_size):
            yield self.batch(order[i : i + batch_size], gen)


class TensorExamples:
    """Fixed examples (finetuning) held as one tensor, served in batches."""

    def __init__(self, dataset: NameDataset):
        pairs = [dataset[i] for i in range(len(dataset))]
        self.x = torch.stack([p[0] for p in pairs])
        self.y = torch.stack([p[1] for p in pairs])

    def __len__(self) -> int:
        return len(self.x)

    def epoch(self, batch_size: int, gen: torch.Generator, shuffle: bool = False) -> Iterator[Batch]:
        order = torch.randperm(len(self), generator=gen) if shuffle else torch.arange(len(self))
        for i in range(0, len(order), batch_size):
            j = order[i : i + batch_size]
            yield Batch(self.x[j], self.y[j], len(j))


def example_lengths(y: torch.Tensor) -> torch.Tensor:
    """Positions each padded example needs: up to and including its last real target."""
    t = torch.arange(1, y.shape[1] + 1)
    return ((y != 0) * t).amax(dim=1)


def pack(batch: Batch, capacity: int | None = None) -> Batch:
    """Pack the examples of a padded batch into as few rows as fit (first fit, longest first).

    Each example keeps its tokens and targets; pos restarts at 0 for each example
    and seg names the example, so the model's block-diagonal causal mask gives
    every example exactly the logits it had alone in its padded row.
    """
    x, y = batch.x, batch.y
    cap = capacity or x.shape[1]
    lens = example_lengths(y).tolist()
    order = sorted(range(len(lens)), key=lambda i: -lens[i])
    fill: list[int] = []
    place: list[tuple[int, int]] = [(0, 0)] * len(lens)
    for i in order:
        n = lens[i]
        r = next((r for r, f in enumerate(fill) if f + n <= cap), None)
        if r is None:
            r = len(fill)
            fill.append(0)
        place[i] = (r, fill[r])
        fill[r] += n
    rows, width = len(fill), max(fill) if fill else 1
    # One gather/scatter per tensor instead of a slice copy per example: token k of
    # example i goes from x[i, k] to row r_i, column o_i + k.
    n = torch.tensor(lens, dtype=torch.long)
    r, o = torch.tensor(place, dtype=torch.long).reshape(-1, 2).unbind(1)
    ex = torch.repeat_interleave(torch.arange(len(lens)), n)
    k = torch.arange(int(n.sum())) - torch.repeat_interleave(n.cumsum(0) - n, n)
    src, dst = ex * x.shape[1] + k, (r * width + o)[ex] + k
    X = torch.zeros(rows, width, dtype=x.dtype)
    Y = torch.zeros(rows, width, dtype=y.dtype)
    P = torch.zeros(rows, width, dtype=torch.long)
    S = torch.full((rows, width), -1, dtype=torch.long)
    X.view(-1)[dst] = x.reshape(-1)[src]
    Y.view(-1)[dst] = y.reshape(-1)[src]
    P.view(-1)[dst] = k
    S.view(-1)[dst] = ex
    R = None
    if batch.read_only is not None:
        R = torch.zeros(rows, width, dtype=torch.bool)
        R.view(-1)[dst] = batch.read_only.reshape(-1)[src]
    return Batch(X, Y, batch.n_examples, P, S, R)


class DatasetSource:
    """The reference path: a torch DataLoader over a one-example-at-a-time dataset."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch(self, batch_size: int, gen: torch.Generator, shuffle: bool = False) -> Iterator[Batch]:
        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=shuffle, generator=gen if shuffle else None)
        for x, y in loader:
            yield Batch(x, y, len(x))

    # The per-example corruption draws from the dataset's own Python RNG.
    def rng_state(self):
        rng = getattr(self.dataset, "rng", None)
        return None if rng is None else rng.getstate()

    def set_rng_state(self, state) -> None:
        if state is not None:
            self.dataset.rng.setstate(_as_tuple(state))


def _as_tuple(x):
    return tuple(_as_tuple(i) for i in x) if isinstance(x, list) else x
