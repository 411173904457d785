"""One greedy decoding step of a whole batch, written out as plain tensor operations.

Decoding feeds one new character a row through the model per step. On a CPU such
a step is a few small matrix-vector products, and the module path (Context,
Layout, masks over every slot, three projections for q, k and v, SDPA's
dispatch) costs more in per-operation overhead than in arithmetic: in a
profile of one question with the shipped model, the products were under
half of a step's time. This step computes exactly what GPT.forward computes for one
token a row with a key/value cache, in fewer operations: q, k and v from one
product with their weights side by side, attention over the filled slots only,
the mask built once for all layers. Where the model is not the plain vanilla
one (the synthesizer, rotary positions, word keys, the reference kernels) or
the decoding is not in fp32, decoding keeps the module path; tests check that
both give the same characters and, to float rounding, the same probabilities
(`python bench/decode_step.py` times the two against each other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .attention import KVCache
from .model import GPT


@dataclass(frozen=True)
class _Layer:
    ln1: tuple[torch.Tensor, torch.Tensor, float]
    qkv_t: torch.Tensor  # (C, 3C): the query, key and value weights side by side, transposed
    qkv_b: torch.Tensor
    proj_t: torch.Tensor
    proj_b: torch.Tensor
    ln2: tuple[torch.Tensor, torch.Tensor, float]
    fc_t: torch.Tensor
    fc_b: torch.Tensor
    out_t: torch.Tensor
    out_b: torch.Tensor


@dataclass(frozen=True)
class StepWeights:
    """The model's weights laid out for the step, and the parameter versions they were taken at."""

    layers: tuple[_Layer, ...]
    versions: tuple[tuple[int, int], ...]


def supports(model: GPT, precision: str) -> bool:
    """Whether the lean step computes this model: vanilla attention with learned positions, no
    word keys, not forced onto the reference kernels, decoded in fp32 with fp32 weights."""
    c = model.config
    return (precision == "fp32" and c.variant == "vanilla" and not c.rope and not c.word_keys
            and not c.reference and model.head.weight.dtype == torch.float32)


def _versions(model: GPT) -> tuple[tuple[int, int], ...]:
    # a version counts in-place changes; the address changes when a parameter is replaced (model.to())
    return tuple((p._version, p.data_ptr()) for p in model.parameters())


def step_weights(model: GPT) -> StepWeights:
    """The laid-out weights, kept on the model and taken again whenever a parameter has changed
    since (a training step or a load changes them in place, which bumps their version; moving the
    model replaces them)."""
    versions = _versions(model)
    cached: StepWeights | None = getattr(model, "_step_weights", None)
    if cached is not None and cached.versions == versions:
        return cached
    layers = []
    with torch.no_grad():
        for b in model.blocks:
            a = b.attn
            layers.append(_Layer(
                (b.ln1.weight, b.ln1.bias, b.ln1.eps),
                torch.cat([a.query.weight, a.key.weight, a.value.weight]).t().contiguous(),
                torch.cat([a.query.bias, a.key.bias, a.value.bias]),
                a.proj.weight.t().contiguous(), a.proj.bias,
                (b.ln2.weight, b.ln2.bias, b.ln2.eps),
                b.mlp[0].weight.t().contiguous(), b.mlp[0].bias,
                b.mlp[2].weight.t().contiguous(), b.mlp[2].bias))
    w = StepWeights(tuple(layers), versions)
    model._step_weights = w  # a plain attribute, not a parameter or buffer: never saved
    return w


@torch.no_grad()
def lean_step(model: GPT, w: StepWeights, tok: torch.Tensor, pos: torch.Tensor, cache: KVCache,
              filled: int) -> torch.Tensor:
    """Logits (B, T, vocab) after feeding tok (B, T) at positions pos (B, T) (T = 1 in a decoding
    step, more where speculative decoding checks a guess; a row's positions distinct), writing
    each layer's keys and values into the cache at pos. filled: one more than the largest position
    of pos, so that attention reads slots 0 .. filled-1 only (a query sees its row's slots up to
    its own position)."""
    c = model.config
    (B, T), C, nh = tok.shape, c.n_embd, c.n_head
    hs = C // nh
    rows = torch.arange(B, device=tok.device)[:, None]
    x = model.tok_emb.weight[tok] + model.pos_emb[0][pos]  # type: ignore[index]
    seen = (torch.arange(filled, device=tok.device)[None, None, :] <= pos[:, :, None])[:, None]  # (B, 1, T, S)
    scale = 1.0 / math.sqrt(hs)
    for i, L in enumerate(w.layers):
        h = F.layer_norm(x, (C,), *L.ln1)
        q, k, v = torch.addmm(L.qkv_b, h.view(B * T, C), L.qkv_t).view(B, T, 3, nh, hs).unbind(2)
        K, V = cache.k[i], cache.v[i]
        K[rows, :, pos] = k
        V[rows, :, pos] = v
        # few queries a row: SDPA was faster than batched matrix-vector products here, for one row
        # and for 32 (a microbenchmark on a 2-core AVX2 EPYC); bench/decode_step.py times the whole
        y = F.scaled_dot_product_attention(q.transpose(1, 2), K[:, :, :filled], V[:, :, :filled], attn_mask=seen,
                                           scale=scale).transpose(1, 2).reshape(B * T, C)
        x = x + torch.addmm(L.proj_b, y, L.proj_t).view(B, T, C)
        h = F.gelu(torch.addmm(L.fc_b, F.layer_norm(x, (C,), *L.ln2).view(B * T, C), L.fc_t))
        x = x + torch.addmm(L.out_b, h, L.out_t).view(B, T, C)
    return model.head(model.ln_f(x))
