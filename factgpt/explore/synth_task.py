"""A learning experiment: content-based lookup with one attention layer.

Each sequence holds P key->value pairs, one pair per position (the key's and the
value's embeddings are summed into that position), then a query position that
holds a key and a '?' marker. The target is the value paired with the queried
key. The pairs come in random order, so finding the right one needs attention
weights that depend on the other positions' contents.

Key-query attention can do that in one layer: q_t . k_j compares the query key
with key j. Synthesizer attention cannot: its scores for position t are
ReLU(x_t A + b1) B + b2, a function of x_t (token and position) alone, so the
weights over earlier positions are the same whatever those positions hold.

(With separate key and value tokens, k1 v1 k2 v2 ... q, even key-query
attention needs two layers: one to copy each key onto its value's position,
one to look it up. One pair per position keeps the comparison to one layer.)
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from typing import Iterator

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class TaskConfig:
    n_keys: int = 16
    n_values: int = 16
    n_pairs: int = 8  # sequence length is n_pairs + 1
    d: int = 64
    n_head: int = 2
    steps: int = 1500
    batch: int = 128
    lr: float = 3e-3
    eval_size: int = 4096

    @property
    def T(self) -> int:
        return self.n_pairs + 1

    @property
    def vocab(self) -> int:
        return self.n_keys + self.n_values + 1  # keys, values, '?'


FULL = TaskConfig()
QUICK = TaskConfig(steps=200, eval_size=2048)


def sample_batch(cfg: TaskConfig, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids (batch, T, 2), target value (batch,), position of the matching pair (batch,)."""
    P = cfg.n_pairs
    keys = torch.rand(batch, cfg.n_keys, generator=gen).argsort(dim=1)[:, :P]  # distinct keys
    vals = torch.rand(batch, cfg.n_values, generator=gen).argsort(dim=1)[:, :P]  # distinct values
    where = torch.randint(0, P, (batch,), generator=gen)
    rows = torch.arange(batch)
    idx = torch.empty(batch, cfg.T, 2, dtype=torch.long)
    idx[:, :P, 0] = keys
    idx[:, :P, 1] = cfg.n_keys + vals
    idx[:, P, 0] = keys[rows, where]
    idx[:, P, 1] = cfg.n_keys + cfg.n_values  # '?'
    return idx, vals[rows, where], where


def reshuffle_context(cfg: TaskConfig, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Same query token, but the earlier positions get new contents: pairs shuffled, new values."""
    B, P = idx.shape[0], cfg.n_pairs
    out = idx.clone()
    perm = torch.rand(B, P, generator=gen).argsort(dim=1)
    out[:, :P, 0] = idx[:, :P, 0].gather(1, perm)
    out[:, :P, 1] = cfg.n_keys + torch.rand(B, cfg.n_values, generator=gen).argsort(dim=1)[:, :P]
    return out


# -----------------------------------------------------------------------------
# the two attention layers; both return (output, attention weights (B, h, T, T))


class KeyQueryAttention(nn.Module):
    def __init__(self, d: int, n_head: int, T: int):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y), att


class SynthesizerHead(nn.Module):
    """Per head: scores = ReLU(X A + b1) B + b2, with B in R^{d/h x T} indexed by key position."""

    def __init__(self, d: int, n_head: int, T: int):
        super().__init__()
        self.n_head = n_head
        hs = d // n_head
        self.w1 = nn.Linear(d, d)  # A and b1 of every head, side by side
        self.w2 = nn.Parameter(torch.randn(n_head, hs, T) * 0.02)
        self.b2 = nn.Parameter(torch.zeros(n_head, T))
        self.value = nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, C = x.shape
        h = F.relu(self.w1(x)).view(B, T, self.n_head, -1).transpose(1, 2)  # (B, nh, T, hs)
        att = h @ self.w2[:, :, :T] + self.b2[:, None, :T]  # row t is built from x_t alone
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        v = self.value(x).view(B, T, self.n_head, -1).transpose(1, 2)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y), att


class OneLayer(nn.Module):
    """Token + position embedding, one attention layer with a residual, layer norm, linear head."""

    def __init__(self, cfg: TaskConfig, kind: str):
        super().__init__()
        attn = {"key-query": KeyQueryAttention, "synthesizer": SynthesizerHead}[kind]
        self.tok = nn.Embedding(cfg.vocab, cfg.d)
        self.pos = nn.Embedding(cfg.T, cfg.d)
        self.attn = attn(cfg.d, cfg.n_head, cfg.T)
        self.ln = nn.LayerNorm(cfg.d)
        self.head = nn.Linear(cfg.d, cfg.n_values)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = idx.shape[1]
        x = self.tok(idx).sum(dim=2) + self.pos(torch.arange(T))  # key + value (or '?') + position
        y, att = self.attn(x)
        x = x + y
        return self.head(self.ln(x[:, -1])), att  # only the query position is read


def build(cfg: TaskConfig, kind: str, seed: int) -> OneLayer:
    with torch.random.fork_rng():  # leave the caller's global RNG alone
        torch.manual_seed(seed)
        return OneLayer(cfg, kind)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """A model this small only loses time to thread hand-offs (badly so on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train(cfg: TaskConfig, kind: str, seed: int) -> tuple[OneLayer, list[tuple[int, float]]]:
    with one_thread():
        return _train(cfg, kind, seed)


def _train(cfg: TaskConfig, kind: str, seed: int) -> tuple[OneLayer, list[tuple[int, float]]]:
    model = build(cfg, kind, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    history = []
    for step in range(cfg.steps):
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))  # cosine decay to zero
        for g in opt.param_groups:
            g["lr"] = lr
        idx, target, _ = sample_batch(cfg, cfg.batch, gen)
        logits, _ = model(idx)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == cfg.steps - 1:
            history.append((step, loss.item()))
    return model, history


@torch.no_grad()
def query_attention(model: OneLayer, idx: torch.Tensor) -> torch.Tensor:
    """Attention weights of the last (query) position: (B, n_head, T)."""
    return model(idx)[1][:, :, -1, :]


@torch.no_grad()
def evaluate(model: OneLayer, cfg: TaskConfig, gen: torch.Generator) -> dict:
    idx, target, where = sample_batch(cfg, cfg.eval_size, gen)
    logits, att = model(idx)
    on_match = att[torch.arange(len(where)), :, -1, where]  # (B, nh): weight on the matching pair
    return dict(
        accuracy=(logits.argmax(-1) == target).float().mean().item(),
        attention_on_match=on_match.mean(0).tolist(),
    )


@torch.no_grad()
def invariance(model: OneLayer, cfg: TaskConfig, gen: torch.Generator, batch: int = 512) -> dict:
    """Change every earlier position's contents, keep the query token: do its weights move?"""
    idx, _, _ = sample_batch(cfg, batch, gen)
    before = query_attention(model, idx)
    after = query_attention(model, reshuffle_context(cfg, idx, gen))
    diff = (after - before).abs()
    return dict(max_abs_change=diff.max().item(), mean_tv_change=0.5 * diff.sum(-1).mean().item())


def experiment(seed: int = 0, quick: bool = False) -> dict:
    """Train one layer of each kind on the lookup task; measure accuracy and the invariance."""
    with one_thread():
        return _experiment(QUICK if quick else FULL, seed)


def _experiment(cfg: TaskConfig, seed: int) -> dict:
    out: dict = dict(config=asdict(cfg), chance=1 / cfg.n_values, chance_among_present=1 / cfg.n_pairs, models={})
    for kind in ("key-query", "synthesizer"):
        t0 = time.perf_counter()
        model, history = train(cfg, kind, seed)
        seconds = time.perf_counter() - t0
        model.eval()
        ev = evaluate(model, cfg, torch.Generator().manual_seed(seed + 2))
        inv = invariance(model, cfg, torch.Generator().manual_seed(seed + 3))
        # the same property holds before any training: it is the architecture, not the learning
        inv0 = invariance(build(cfg, kind, seed + 4), cfg, torch.Generator().manual_seed(seed + 3))
        idx, target, where = sample_batch(cfg, 12, torch.Generator().manual_seed(seed + 5))
        maps = query_attention(model, idx)
        out["models"][kind] = dict(
            train_seconds=seconds,
            final_loss=history[-1][1],
            history=history,
            **ev,
            invariance_trained=inv,
            invariance_untrained=inv0,
            maps=maps.tolist(),
            maps_match=where.tolist(),
        )
    return out


def check_synthesizer(seed: int = 0, quick: bool = False) -> dict:
    """The table row for (g), in the same shape as the rows of claims.py."""
    r = experiment(seed, quick)
    kq, sy = r["models"]["key-query"], r["models"]["synthesizer"]
    cfg = r["config"]
    numbers = dict(
        accuracy_key_query=kq["accuracy"],
        accuracy_synthesizer=sy["accuracy"],
        chance=r["chance"],
        chance_among_present=r["chance_among_present"],
        loss_key_query=kq["final_loss"],
        loss_synthesizer=sy["final_loss"],
        loss_uniform_among_present=math.log(cfg["n_pairs"]),
        attention_on_match_key_query=kq["attention_on_match"],
        attention_on_match_synthesizer=sy["attention_on_match"],
        invariance_key_query=kq["invariance_trained"],
        invariance_synthesizer=sy["invariance_trained"],
        invariance_untrained_key_query=kq["invariance_untrained"],
        invariance_untrained_synthesizer=sy["invariance_untrained"],
        config=cfg,
    )
    return dict(
        id="g",
        title="(g) one synthesizer layer cannot do content-based lookup; key-query can",
        construction=(
            f"{cfg['n_pairs']} key→value pairs (one per position) + a query key; one layer, "
            f"{cfg['n_head']} heads, d={cfg['d']}, {cfg['steps']} steps each"
        ),
        measured=(
            f"accuracy key-query {kq['accuracy']:.3f}, synthesizer {sy['accuracy']:.3f} "
            f"(chance {r['chance']:.3f}; one of the {cfg['n_pairs']} present values {r['chance_among_present']:.3f}); "
            f"when earlier tokens change, query weights move {sy['invariance_trained']['max_abs_change']:.0e} (synthesizer) "
            f"vs up to {kq['invariance_trained']['max_abs_change']:.2f} (key-query)"
        ),
        holds="yes",
        numbers=numbers,
        series=dict(
            history={k: m["history"] for k, m in r["models"].items()},
            maps={k: m["maps"] for k, m in r["models"].items()},
            maps_match=kq["maps_match"],
        ),
        seconds={k: m["train_seconds"] for k, m in r["models"].items()},  # wall time: printed, not saved
    )
