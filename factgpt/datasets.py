"""The two datasets of the study, one example at a time (the reference).

CharCorruptionDataset turns a line of wiki.txt into a span-corruption example
for pretraining; NameDataset turns `question<TAB>answer` into a finetuning
example whose loss covers only `⁇answer⁇`. The fast batched version of the
corruption lives in batches.py and is tested against this one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from .errors import InputError
from .vocab import MASK, PAD, Vocab


def corruption_lengths(doc_len: int, block_size: int, rng: random.Random) -> tuple[int, int, int]:
    """Draw (truncated length, mask start, mask length) for one document.

    The truncated length is uniform on [4, int(block_size*7/8)], capped at the
    document's length. The mask length is uniform on [1, max(1, L//2 - 1)], whose
    mean is about L/4: short and long spans both occur. The mask starts anywhere
    it fits.
    """
    trunc = min(rng.randint(4, int(block_size * 7 / 8)), doc_len)
    mask_len = rng.randint(1, max(1, trunc // 2 - 1))
    mask_len = min(mask_len, trunc)
    start = rng.randint(0, trunc - mask_len)
    return trunc, start, mask_len


def corrupt(doc: str, trunc: int, start: int, mask_len: int, block_size: int) -> str:
    """`prefix ⁇ suffix ⁇ masked`, padded with □ to block_size characters."""
    t = doc[:trunc]
    prefix, masked, suffix = t[:start], t[start : start + mask_len], t[start + mask_len :]
    s = prefix + MASK + suffix + MASK + masked
    return s + PAD * (block_size - len(s))


def documents(text: str) -> list[str]:
    """One document per non-empty line."""
    return [line for line in text.split("\n") if line]


class CharCorruptionDataset(Dataset):
    """Span-corruption pretraining examples, drawn afresh each time an item is read."""

    def __init__(self, text: str, block_size: int, vocab: Vocab | None = None, seed: int | None = None,
                 where: str = "<corpus>"):
        self.block_size = block_size
        self.vocab = vocab or Vocab.from_corpus(text, where)
        self.docs = documents(text)
        if not self.docs:
            raise InputError(where, "the pretraining corpus has no non-empty line")
        self.rng = random.Random(seed)
        # Check every character once, so a bad one is named with its line.
        for i, line in enumerate(text.split("\n"), 1):
            self.vocab.encode(line, where, i)

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        doc = self.docs[idx]
        trunc, start, mask_len = corruption_lengths(len(doc), self.block_size, self.rng)
        ids = self.vocab.encode(corrupt(doc, trunc, start, mask_len, self.block_size))
        s = torch.tensor(ids, dtype=torch.long)
        return s[:-1], s[1:]


@dataclass(frozen=True)
class QA:
    question: str
    answer: str | None
    line: int


def parse_tsv(text: str, where: str, need_answers: bool) -> list[QA]:
    """Parse `question<TAB>answer` lines; a file of bare questions is allowed for evaluation."""
    rows: list[QA] = []
    for i, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if "\t" in line:
            q, a = line.split("\t", 1)
            if "\t" in a:
                raise InputError(where, "more than one tab: expected `question<TAB>answer`", i)
        else:
            q, a = line, None
        if not q.strip():
            raise InputError(where, "empty question", i)
        if a is None and need_answers:
            raise InputError(where, "no tab: expected `question<TAB>answer`", i)
        if a is not None and not a.strip():
            raise InputError(where, "empty answer after the tab", i)
        rows.append(QA(q, a, i))
    if not rows:
        raise InputError(where, "no question in the file")
    with_answers = sum(r.answer is not None for r in rows)
    if 0 < with_answers < len(rows):
        bad = next(r for r in rows if r.answer is None)
        raise InputError(where, "no tab: some lines have answers and this one has none", bad.line)
    return rows


def encode_qa(vocab: Vocab, qa: QA, block_size: int, where: str) -> list[int]:
    """Ids of `question⁇answer⁇`, checked against the vocabulary and the block size."""
    s = qa.question + MASK + (qa.answer or "") + MASK
    ids = vocab.encode(s, where, qa.line)
    if len(ids) > block_size:
        raise InputError(where, f"question and answer take {len(ids)} characters, more than the block size {block_size}", qa.line)
    return ids


class NameDataset(Dataset):
    """`question⁇answer⁇□…` with targets masked to PAD inside the question.

    Non-ASCII letters in names are kept (they are in the corpus's vocabulary).
    """

    def __init__(self, vocab: Vocab, tsv_text: str, block_size: int = 128, where: str = "<tsv>"):
        self.vocab, self.block_size = vocab, block_size
        self.rows = parse_tsv(tsv_text, where, need_answers=True)
        self.encoded = [encode_qa(vocab, r, block_size, where) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.encoded[idx]
        qlen = len(self.rows[idx].question)
        s = torch.tensor(ids + [self.vocab.pad_id] * (self.block_size - len(ids)), dtype=torch.long)
        x, y = s[:-1], s[1:].clone()
        y[: qlen - 1] = self.vocab.pad_id  # no loss on predicting the question itself
        return x, y
