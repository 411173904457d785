"""The two attention variants of the study.

CausalSelfAttention scores a key by its content: q_t · k_j. The synthesizer
scores it without looking at it: ReLU(x_t A + b1) B[:, j] + b2[j] depends on
the query token and the key's *position* only. Writing that score as a dot
product of [ReLU(x_t A + b1), 1] with [B[:, j], b2[j]] lets both variants run
through the same fused attention kernel, the same packing masks and the same
key/value cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dropout import Dropout, drop_mask


@dataclass
class Context:
    """What every attention layer of one forward pass shares.

    pos: (B, T) position of each query inside its example.
    mask: None for a plain causal batch, else a boolean (B, 1, T, S) mask of the
        keys each query may see (block-diagonal when examples are packed; the
        cache's filled slots when decoding).
    cache: the key/value cache when decoding, None otherwise.
    explicit: use the reference attention (matmul, masked_fill, softmax) instead
        of torch's fused scaled_dot_product_attention.
    rope: (cos, sin), each (B, 1, T, head_size / 2), when queries and keys are
        rotated by their positions (rotary embeddings) instead of the model
        adding learned position vectors.
    """

    pos: torch.Tensor
    mask: torch.Tensor | None = None
    cache: "KVCache | None" = None
    explicit: bool = False
    rope: tuple[torch.Tensor, torch.Tensor] | None = None


def rope_angles(pos: torch.Tensor, head_size: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position × frequency, frequencies base^(-2i/d) for the d/2 pairs of a head."""
    freq = base ** (-torch.arange(0, head_size, 2, device=pos.device, dtype=torch.float32) / head_size)
    angle = pos[:, None, :, None].to(torch.float32) * freq  # (B, 1, T, d/2)
    return angle.cos(), angle.sin()


def rotate(t: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate each pair (t_i, t_{i+d/2}) of every head by its angle: then q·k depends on
    the two tokens and on their distance only, so what a head learns to look back at
    (e.g. the token after an earlier copy of this one) works at any position."""
    cos, sin = rope
    a, b = t.float().chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1).to(t.dtype)


class KVCache:
    """Keys and values of every layer, one slot per position, for greedy decoding."""

    def __init__(self, n_layer: int, batch: int, n_head: int, slots: int, k_dim: int, v_dim: int,
                 dtype: torch.dtype, device: torch.device):
        self.k = torch.zeros(n_layer, batch, n_head, slots, k_dim, dtype=dtype, device=device)
        self.v = torch.zeros(n_layer, batch, n_head, slots, v_dim, dtype=dtype, device=device)
        self.layer = 0
        self.tokens: torch.Tensor | None = None  # ids read so far, for models with word keys

    def update(self, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, nh, T, d) at slots pos (B, T); return this layer's full cache."""
        K, V = self.k[self.layer], self.v[self.layer]
        if k.shape[1] != K.shape[1]:  # shared synthesizer keys: one for all heads
            k = k.expand(-1, K.shape[1], -1, -1)
        b = torch.arange(K.shape[0], device=pos.device)[:, None]
        K[b, :, pos] = k.transpose(1, 2).to(K.dtype)
        V[b, :, pos] = v.transpose(1, 2).to(V.dtype)
        self.layer = (self.layer + 1) % self.k.shape[0]
        return K, V

    def first_rows(self, n: int) -> "KVCache":
        """Rows 0..n-1 of the cache, sharing its memory: a decoding that feeds only those rows
        writes through it."""
        view = KVCache.__new__(KVCache)
        view.k, view.v, view.layer = self.k[:, :n], self.v[:, :n], 0
        view.tokens = None if self.tokens is None else self.tokens[:n]
        return view

    def regroup(self, rows: torch.Tensor) -> None:
        """Put row rows[r] of the cache in row r (a permutation of the rows; copies the cache)."""
        self.k, self.v = self.k[:, rows], self.v[:, rows]
        if self.tokens is not None:
            self.tokens = self.tokens[rows]

    def move_rows(self, dst: torch.Tensor, src: torch.Tensor) -> None:
        """Row src[j] of the cache into row dst[j], for all j at once (copies those rows only)."""
        self.k[:, dst], self.v[:, dst] = self.k[:, src], self.v[:, src]
        if self.tokens is not None:
            self.tokens[dst] = self.tokens[src]

    def mask(self, pos: torch.Tensor) -> torch.Tensor:
        """A query at position p sees the slots 0..p of its own row."""
        slots = torch.arange(self.k.shape[3], device=pos.device)
        return (slots[None, None, :] <= pos[:, :, None])[:, None]


QUERY_CHUNKS = 3  # causal attention in this many slices of queries (query_chunks)


def query_chunks(T: int, S: int, n: int) -> list[tuple[int, int, int]]:
    """(first, end, keys) for n slices of T queries: queries first..end-1 see keys < keys at most.

    With causal masking, a query at position t sees keys 0..t, so the weights
    above the slices' staircase are all masked: for 127 positions in three
    slices, a third of them are never computed (`python bench/ab_step.py
    --what chunks` times a step both ways). Needs T == S (no cache)."""
    if T != S or n <= 1:
        return [(0, T, S)]
    step = -(-T // n)
    return [(i, min(i + step, T), min(i + step, T)) for i in range(0, T, step)]


class _DropoutAttention(torch.autograd.Function):
    """dropout(softmax(q kᵀ · scale, masked)) v for (B, nh, T, ·) tensors, in fewer passes.

    The weights are a (B, nh, T, S) tensor, larger than q, k and v together
    (127 keys a query against 3 × 32 numbers a head in the course model), so
    on a CPU every pass over them counts. The scales go onto the small tensors
    (q before the product, 1/(1 − p) onto the output), the mask and the
    dropout write into buffers already allocated, the backward reuses them,
    and slices of queries skip the keys they can never see (query_chunks).
    The dropout mask is drawn whole, as the explicit path draws it, so both
    paths drop the same weights; the results differ only by rounding.
    """

    @staticmethod
    def forward(ctx, q, k, v, allowed, p: float, scale: float):  # type: ignore[override]
        qs, k, v = (q * scale).contiguous(), k.contiguous(), v.contiguous()  # products without copies
        B, H, T, _ = qs.shape
        S = k.shape[-2]
        drop, ctx.keep_scale = drop_mask((B, H, T, S), p, q.device)
        ctx.chunks = query_chunks(T, S, QUERY_CHUNKS)
        ys, weights = [], []
        for first, end, keys in ctx.chunks:
            w = qs[:, :, first:end] @ k[:, :, :keys].transpose(-2, -1)
            w.masked_fill_(~allowed[..., first:end, :keys], float("-inf"))
            a = torch.softmax(w, dim=-1)
            dropped = torch.where(drop[..., first:end, :keys], a.new_zeros(()), a, out=w)  # w is no longer needed
            ys.append(dropped @ v[:, :, :keys])
            weights += [a, dropped]
        ctx.save_for_backward(qs, k, v, drop, *weights)
        ctx.scale = scale
        y = ys[0] if len(ys) == 1 else torch.cat(ys, dim=2)
        return y.mul_(ctx.keep_scale)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        qs, k, v, drop, *weights = ctx.saved_tensors
        g = g.contiguous() * ctx.keep_scale
        dq = torch.empty_like(qs)
        dk = qs.new_zeros(qs.shape[:2] + k.shape[2:])
        dv = torch.zeros_like(v)
        for (first, end, keys), a, dropped in zip(ctx.chunks, weights[0::2], weights[1::2]):
            gc = g[:, :, first:end]
            dv[:, :, :keys] += dropped.transpose(-2, -1) @ gc
            da = (gc @ v[:, :, :keys].transpose(-2, -1)).masked_fill_(drop[..., first:end, :keys], 0.0)
            dw = torch._softmax_backward_data(da, a, -1, a.dtype)
            dq[:, :, first:end] = dw @ k[:, :, :keys]
            dk[:, :, :keys] += dw.transpose(-2, -1) @ qs[:, :, first:end]
        # the synthesizer shares its keys among heads
        return dq.mul_(ctx.scale), dk.sum_to_size(k.shape), dv, None, None, None


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: Context, dropout: float,
           drop: nn.Module, scale: float) -> torch.Tensor:
    """softmax(q kᵀ · scale, masked) v for (B, nh, T, ·) tensors.

    On a CPU, dropout on the weights makes the fused kernel fall back to plain
    matrix products anyway, so CPU training takes _DropoutAttention (fp32) or
    the explicit path (under autocast); CUDA kernels apply dropout inside the
    fused kernel. ctx.explicit forces the explicit path: the reference.
    """
    T, S = q.shape[-2], k.shape[-2]
    on_cpu_dropout = dropout > 0.0 and q.device.type == "cpu"
    if ctx.explicit or on_cpu_dropout:
        mask = ctx.mask if ctx.mask is not None else torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
        if not ctx.explicit and q.dtype == torch.float32 and not torch.is_autocast_enabled("cpu"):
            return _DropoutAttention.apply(q, k, v, mask, dropout, scale)
        att = (q @ k.transpose(-2, -1)) * scale
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return drop(att) @ v
    if k.shape[1] != q.shape[1]:
        k = k.expand(-1, q.shape[1], -1, -1)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=ctx.mask, is_causal=ctx.mask is None, dropout_p=dropout, scale=scale
    )


class CausalSelfAttention(nn.Module):
    """Multi-head key-query-value attention with a causal mask and an output projection."""

    def __init__(self, n_embd: int, n_head: int, attn_pdrop: float, resid_pdrop: float):
        super().__init__()
        assert n_embd % n_head == 0
        self.n_head, self.p_drop = n_head, attn_pdrop
        self.key = nn.Linear(n_embd, n_embd)
        self.query = nn.Linear(n_embd, n_embd)
        self.value = nn.Linear(n_embd, n_embd)
        self.attn_drop = Dropout(attn_pdrop)
        self.resid_drop = Dropout(resid_pdrop)
        self.proj = nn.Linear(n_embd, n_embd)

    def heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        if ctx.rope is not None:  # keys enter the cache already rotated: their positions are fixed
            q, k = rotate(q, ctx.rope), rotate(k, ctx.rope)
        if ctx.cache is not None:
            k, v = ctx.cache.update(k, v, ctx.pos)
        p = self.p_drop if self.training else 0.0
        y = attend(q, k, v, ctx, p, self.attn_drop, 1.0 / math.sqrt(k.shape[-1]))
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class SynthesizerAttention(nn.Module):
    """Dense synthesizer: per head, Y_i = softmax(ReLU(X A_i + b1) B + b2) (X V_i), causal.

    As in the original code one B ∈ R^{d/h × (ℓ−1)} and one b2 are shared by all
    heads (`per_head_b=True` gives each head its own B_i, as the equation reads).
    Column j of B scores the key at position j, whatever that key contains.
    """

    def __init__(self, n_embd: int, n_head: int, block_size: int, attn_pdrop: float, resid_pdrop: float,
                 per_head_b: bool = False):
        super().__init__()
        assert n_embd % n_head == 0
        self.n_head, self.p_drop = n_head, attn_pdrop
        hs = n_embd // n_head
        self.w1 = nn.Linear(n_embd, n_embd)  # the A_i of all heads side by side, and b1
        shape = (n_head, hs, block_size - 1) if per_head_b else (hs, block_size - 1)
        self.w2 = nn.Parameter(torch.empty(shape).uniform_(-0.001, 0.001))  # B
        self.b2 = nn.Parameter(torch.zeros(block_size - 1))
        self.value = nn.Linear(n_embd, n_embd)
        self.attn_drop = Dropout(attn_pdrop)
        self.resid_drop = Dropout(resid_pdrop)
        self.proj = nn.Linear(n_embd, n_embd)

    def position_keys(self, pos: torch.Tensor) -> torch.Tensor:
        """[B[:, p], b2[p]] for every position p: (B, 1 or nh, T, hs + 1)."""
        Bm = self.w2 if self.w2.dim() == 3 else self.w2[None]  # (1|nh, hs, ℓ-1)
        cols = Bm.transpose(1, 2)[:, pos]  # (1|nh, B, T, hs)
        b2 = self.b2[pos][None, ..., None].expand(cols.shape[0], -1, -1, 1)
        return torch.cat([cols, b2], dim=-1).transpose(0, 1)

    def forward(self, x: torch.Tensor, ctx: Context) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        a = F.relu(self.w1(x)).view(B, T, self.n_head, hs).transpose(1, 2)
        q = torch.cat([a, torch.ones_like(a[..., :1])], dim=-1)  # the 1 picks up b2
        k = self.position_keys(ctx.pos).to(q.dtype)
        v = self.value(x).view(B, T, self.n_head, hs).transpose(1, 2)
        if ctx.cache is not None:
            k, v = ctx.cache.update(k, v, ctx.pos)
        p = self.p_drop if self.training else 0.0
        y = attend(q, k, v, ctx, p, self.attn_drop, 1.0)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))
