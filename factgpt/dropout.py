"""Dropout with a cheaper random mask.

nn.Dropout draws its mask with bernoulli_, and torch.rand draws 32 random bits
for every element; on a 2-core CPU either costs a large share of a training
step of this model (the attention-weight dropout alone touches B·h·T² numbers
per layer, and the random generator runs on one core). Here one 64-bit draw
makes the mask of four elements: each 16-bit piece is compared with p·2¹⁶.
That is Bernoulli(p) with p rounded to a multiple of 2⁻¹⁶ (0.1 becomes
0.100006), and the kept elements are scaled by 1/(1 − that p), so the
output's expectation is the input, exactly as with nn.Dropout. The mask is
kept as booleans, which keeps the backward pass cheap.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

_LEVELS = 1 << 16


def drop_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu"
              ) -> tuple[torch.Tensor, float]:
    """(mask, scale): a boolean mask of `shape`, True where an element is dropped, and the factor
    1/(1 − p') for the kept ones, p' being the probability the mask really has."""
    device = torch.device(device)
    if device.type != "cpu":  # GPUs draw random numbers in parallel: no need to ration bits
        return torch.rand(shape, device=device) < p, 1.0 / (1.0 - p)
    n = math.prod(shape)
    cut = min(round(p * _LEVELS), _LEVELS - 1)  # drop a 16-bit piece u (as an unsigned number) when u < cut
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), 2**63 - 1)
    drop = bits.view(torch.int16)[:n].view(shape) < cut - _LEVELS // 2  # int16 holds u − 2¹⁵
    return drop, _LEVELS / (_LEVELS - cut)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:  # type: ignore[override]
        drop, ctx.scale = drop_mask(x.shape, p, x.device)
        ctx.save_for_backward(drop)
        return (x * ctx.scale).masked_fill_(drop, 0)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (drop,) = ctx.saved_tensors
        return (g * ctx.scale).masked_fill_(drop, 0), None


class Dropout(nn.Module):
    """Drop-in for nn.Dropout(p): zero each element with probability p, scale the rest by 1/(1 − p)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.reference = False  # True: torch's own dropout (the plain reference path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.reference:
            return torch.nn.functional.dropout(x, self.p, True)
        return _Dropout.apply(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
