"""Word-key embeddings: a lookup-table memory keyed by the words just read.

A character-level transformer has to build a person's identity out of the
letters of the name before it can attach a fact to it, and that costs many
passes over the data. Here every letter position also gets a learned vector
looked up by a hash of (previous word, current word up to this letter), plus
one of the current word alone. At the last letter of "Ada Lovelace" the key is
the same in "Ada Lovelace. born in London" and in "Where was Ada Lovelace
born?", so whatever the model writes into that row while reading the line is
there when the question asks. The table adds parameters, not arithmetic.

Keys are computed from token ids with tensor operations, for padded rows,
packed rows (a word never reaches back into the previous example) and cached
decoding (the cache keeps the ids read so far).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .vocab import Vocab

_P = 2_147_483_629  # a prime below 2**31: sums of 128 products stay far inside int64


class WordKeys(nn.Module):
    """Sum of hashed word and word-pair embeddings at every letter position (zero elsewhere)."""

    def __init__(self, vocab_size: int, letters: list[int], buckets: int, n_embd: int, max_len: int):
        super().__init__()
        self.buckets = buckets
        self.table = nn.Embedding(buckets, n_embd)
        is_letter = torch.zeros(vocab_size, dtype=torch.bool)
        is_letter[letters] = True
        g = torch.Generator().manual_seed(20231)
        # Fixed hash coefficients: part of the architecture, rebuilt identically at load.
        self.register_buffer("is_letter", is_letter, persistent=False)
        self.register_buffer("coef", torch.randint(1, _P, (max_len,), generator=g), persistent=False)
        self.register_buffer("mix", torch.randint(1, 2**20, (3,), generator=g), persistent=False)

    @staticmethod
    def letters_of(vocab: Vocab) -> list[int]:
        return [i for i, ch in enumerate(vocab.chars) if len(ch) == 1 and ch.isalpha()]

    def keys(self, idx: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 3) bucket ids (word, pair hash 1, pair hash 2) and the (B, T) letter mask."""
        B, T = idx.shape
        t = torch.arange(T, device=idx.device).expand(B, T)
        L = self.is_letter[idx]
        new_ex = pos == 0
        prev_L = torch.cat([torch.zeros_like(L[:, :1]), L[:, :-1]], 1) & ~new_ex
        start = L & ~prev_L
        ws = torch.where(start, t, -1).cummax(1).values  # start of the word each position is in
        off = (t - ws).clamp(0, T - 1)
        v = torch.where(L, (idx * self.coef[off]) % _P, 0)
        c = v.cumsum(1)
        before = torch.where(ws > 0, c.gather(1, (ws - 1).clamp(min=0)), 0)
        h = (c - before) % _P  # hash of the current word's letters so far
        nxt_L = torch.cat([L[:, 1:] & ~new_ex[:, 1:], torch.zeros_like(L[:, :1])], 1)
        end = L & ~nxt_L
        last_end = torch.where(end, t, -1).cummax(1).values
        prev_end = torch.where(ws > 0, last_end.gather(1, (ws - 1).clamp(min=0)), -1)
        has_prev = (prev_end >= 0) & (prev_end >= t - pos)  # inside this example
        ph = torch.where(has_prev, h.gather(1, prev_end.clamp(min=0)), _P)  # _P: "no previous word"
        m0, m1, m2 = self.mix
        word = (h * m0 + 1) % _P
        pair1 = (ph * m1 + h) % _P
        pair2 = (h * m2 + ph) % _P
        return torch.stack([word, pair1, pair2], -1) % self.buckets, L

    def forward(self, idx: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        k, L = self.keys(idx, pos)
        return self.table(k).sum(2) * L[..., None].to(self.table.weight.dtype)
