"""The character vocabulary: PAD and MASK first, then the corpus's characters.

It is always built from the pretraining corpus, also when finetuning or
evaluating, so that a checkpoint's ids mean the same characters everywhere;
every checkpoint stores it and loading compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .errors import InputError

PAD = "\u25a1"  # □, id 0: padding, ignored by the loss
MASK = "\u2047"  # ⁇, id 1: marks the masked span and the end of an answer


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]
    stoi: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.chars[:2] != (PAD, MASK) or len(set(self.chars)) != len(self.chars):
            raise ValueError("a vocabulary starts with PAD, MASK and has no repeated characters")
        object.__setattr__(self, "stoi", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_corpus(cls, text: str, where: str = "<corpus>") -> "Vocab":
        for special in (PAD, MASK):
            if special in text:
                line = text[: text.index(special)].count("\n") + 1
                raise InputError(where, f"the corpus contains the reserved character {special!r}", line)
        return cls((PAD, MASK, *sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def mask_id(self) -> int:
        return 1

    def encode(self, text: str, where: str = "<input>", line: int | None = None) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            bad = next(c for c in text if c not in self.stoi)
            raise InputError(
                where, f"character {bad!r} (U+{ord(bad):04X}) is not in the vocabulary of the pretraining corpus", line
            ) from None

    def encode_tensor(self, text: str, where: str = "<input>", line: int | None = None) -> torch.Tensor:
        return torch.tensor(self.encode(text, where, line), dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)
