"""The write-up's hypothesis for names a model never saw: it "relates it to some close,
already seen name" and answers with that person's birthplace.

For every made-up name, the training people nearest to it are found in two ways:

- spelling: the character edit distance (Levenshtein) of the first names plus
  that of the surnames;
- the model's own reading: the cosine similarity of the model's last hidden
  state (after the final LayerNorm) at the name's last character in
  "Where was NAME born?", the state from which the answer is decoded.

Ties share the credit: a name whose k nearest people are equally near scores
the share of them whose birthplace is the model's answer. The observed rate is
the mean of that score over the made-up names. By chance alone, with answers
unrelated to names, a model that answers place x with frequency f(x) would
score Σ_x f(x)·h_i(x) for name i (h_i: the share of its nearest people born in
x); the mean of that is the chance rate, and shuffling the answers among the
names gives its spread (a permutation test, one-sided). The observed rate's
95% interval is a bootstrap over the names.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np
import torch

from ..model import GPT
from ..vocab import Vocab

N_RESAMPLES = 2000


# ---- spelling -----------------------------------------------------------------------
def edit_distances(query: str, candidates: Sequence[str]) -> np.ndarray:
    """Levenshtein distance from query to every candidate: the dynamic programme run for
    all candidates at once, one query character a step."""
    n = len(candidates)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    width = max(map(len, candidates))
    cand = np.full((n, width), -1, dtype=np.int64)
    for i, c in enumerate(candidates):
        cand[i, : len(c)] = [ord(ch) for ch in c]
    lens = np.array([len(c) for c in candidates])
    # prev[:, j]: distance of the query's prefix so far to each candidate's first j characters
    prev = np.tile(np.arange(width + 1), (n, 1))
    for i, ch in enumerate(query, start=1):
        cur = np.empty_like(prev)
        cur[:, 0] = i
        sub = prev[:, :-1] + (cand != ord(ch))
        dele = prev[:, 1:] + 1
        best = np.minimum(sub, dele)
        for j in range(1, width + 1):  # insertion depends on the cell to the left
            cur[:, j] = np.minimum(best[:, j - 1], cur[:, j - 1] + 1)
        prev = cur
    return prev[np.arange(n), lens]


def _parts(name: str) -> tuple[str, str]:
    words = name.split()
    return (words[0], words[-1]) if len(words) > 1 else (name, name)


def nearest_by_spelling(names: Sequence[str], people: Sequence[str]) -> list[list[int]]:
    """For each name, the indices of the people at the least edit distance (first name + surname)."""
    firsts, lasts = zip(*(_parts(p) for p in people))
    ufirst, ulast = sorted(set(firsts)), sorted(set(lasts))
    fi, li = np.searchsorted(ufirst, firsts), np.searchsorted(ulast, lasts)
    cache_f: dict[str, np.ndarray] = {}
    cache_l: dict[str, np.ndarray] = {}
    out = []
    for n in names:
        f, l = _parts(n)
        if f not in cache_f:
            cache_f[f] = edit_distances(f, ufirst)
        if l not in cache_l:
            cache_l[l] = edit_distances(l, ulast)
        d = cache_f[f][fi] + cache_l[l][li]
        out.append(np.flatnonzero(d == d.min()).tolist())
    return out


# ---- the model's reading ------------------------------------------------------------
@torch.no_grad()
def name_states(model: GPT, vocab: Vocab, names: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """(len(names), n_embd): the final LayerNorm's output at each name's last character
    in "Where was NAME born?" (what the answer is read from), unit length."""
    model.eval()
    grabbed: list[torch.Tensor] = []
    hook = model.ln_f.register_forward_hook(lambda _m, _i, out: grabbed.append(out))
    dev = next(model.parameters()).device
    try:
        rows = []
        for s in range(0, len(names), batch_size):
            chunk = [vocab.encode(f"Where was {n} born?") for n in names[s : s + batch_size]]
            T = max(map(len, chunk))
            x = torch.zeros(len(chunk), T, dtype=torch.long)
            for j, ids in enumerate(chunk):
                x[j, : len(ids)] = torch.tensor(ids)
            grabbed.clear()
            model(x.to(dev))
            last = torch.tensor([len("Where was ") + len(n) - 1 for n in names[s : s + batch_size]])
            rows.append(grabbed[0][torch.arange(len(chunk)), last.to(dev)].float().cpu())
    finally:
        hook.remove()
    h = torch.cat(rows)
    return h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest_by_state(model: GPT, vocab: Vocab, names: Sequence[str], people: Sequence[str]) -> list[list[int]]:
    """For each name, the person whose name state is most similar (cosine); ties kept."""
    a, b = name_states(model, vocab, names), name_states(model, vocab, people)
    sim = a @ b.T
    best = sim.max(dim=1, keepdim=True).values
    return [torch.nonzero(row >= top).flatten().tolist() for row, top in zip(sim, best)]


# ---- the test -----------------------------------------------------------------------
def _shares(nearest: Sequence[Sequence[int]], places: Sequence[str]) -> list[dict[str, float]]:
    """h_i: for each name, the share of its nearest people born in each place."""
    out = []
    for near in nearest:
        c = Counter(places[j] for j in near)
        out.append({p: k / len(near) for p, k in c.items()})
    return out


def _hits(answers: Sequence[str], shares: Sequence[dict[str, float]]) -> np.ndarray:
    return np.array([h.get(a, 0.0) for a, h in zip(answers, shares)])


def neighbour_test(answers: Sequence[str], nearest: Sequence[Sequence[int]], places: Sequence[str],
                   seed: int = 0, resamples: int = N_RESAMPLES) -> dict[str, Any]:
    """How often the answer is a nearest person's birthplace, against chance (see the module docstring)."""
    if len(answers) != len(nearest) or not answers:
        raise ValueError("one answer and one set of nearest people per name")
    shares = _shares(nearest, places)
    hits = _hits(answers, shares)
    observed = float(hits.mean())
    freq = Counter(answers)
    n = len(answers)
    chance = float(np.mean([sum(freq[p] * h for p, h in sh.items()) / n for sh in shares]))
    rng = np.random.default_rng(seed)
    perm = np.empty(resamples)
    boot = np.empty(resamples)
    ans = np.array(answers, dtype=object)
    for k in range(resamples):
        perm[k] = _hits(ans[rng.permutation(n)], shares).mean()
        boot[k] = hits[rng.integers(0, n, n)].mean()
    p_value = float((1 + (perm >= observed).sum()) / (resamples + 1))
    return {
        "names": n, "observed": observed, "observed_ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
        "chance": chance, "chance_range95": [float(np.quantile(perm, 0.025)), float(np.quantile(perm, 0.975))],
        "lift": observed / chance if chance > 0 else None, "p_value": p_value,
        "mean_nearest": float(np.mean([len(x) for x in nearest])),
        "resamples": resamples, "seed": seed,
    }


def verdict(t: dict[str, Any], alpha: float = 0.01) -> str:
    """One sentence on what the test says about the hypothesis."""
    obs, ch = 100 * t["observed"], 100 * t["chance"]
    if t["p_value"] >= alpha or t["observed"] <= t["chance"]:
        return (f"not supported: the nearest person's birthplace is answered for {obs:.1f}% of the made-up names, "
                f"{ch:.1f}% expected by chance (p = {t['p_value']:.2g})")
    return (f"supported above chance, for a minority: {obs:.1f}% of the made-up names get the nearest person's "
            f"birthplace against {ch:.1f}% by chance ({t['lift']:.1f}×, p = {t['p_value']:.2g})"
            if obs < 50 else
            f"supported: {obs:.1f}% of the made-up names get the nearest person's birthplace against {ch:.1f}% by "
            f"chance (p = {t['p_value']:.2g})")


def hypothesis_c(model: GPT, vocab: Vocab, names: Sequence[str], answers: Sequence[str],
                 people: Sequence[str], places: Sequence[str], seed: int = 0,
                 spelling: list[list[int]] | None = None) -> dict[str, Any]:
    """Both tests for one model; `spelling` (the same for every model) may be passed in precomputed."""
    out: dict[str, Any] = {}
    near = {"spelling": spelling if spelling is not None else nearest_by_spelling(names, people),
            "model_state": nearest_by_state(model, vocab, names, people)}
    for kind, nearest in near.items():
        t = neighbour_test(answers, nearest, places, seed)
        t["verdict"] = verdict(t)
        t["examples"] = [{"name": n, "answer": a, "nearest": [people[j] for j in nn[:3]],
                          "their_places": [places[j] for j in nn[:3]]}
                         for n, a, nn in list(zip(names, answers, nearest))[:8]]
        out[kind] = t
    return out
