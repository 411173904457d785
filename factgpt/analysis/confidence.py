"""How much a model's confidence says about whether its answer is right.

Confidence is either the probability of the whole generated answer (the
product of its characters' probabilities) or that of its first character.
Three measures per model:

- a reliability diagram: accuracy against confidence in 10 equal-width bins;
- the expected calibration error (ECE): the gap |accuracy − mean confidence|
  of each bin, weighted by the share of predictions in it;
- the AUROC of confidence for telling right answers from wrong ones, computed
  from ranks (the Mann-Whitney U statistic, ties counted half). It is
  undefined (None) when every answer is right or every answer is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..plots import plt
from .figures import save

N_BINS = 10


def _check(conf: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(conf, dtype=float)
    y = np.asarray(correct, dtype=bool)
    if c.shape != y.shape or c.ndim != 1:
        raise ValueError(f"confidences and outcomes differ in shape: {c.shape} vs {y.shape}")
    if c.size and (not np.isfinite(c).all() or c.min() < 0 or c.max() > 1):
        raise ValueError("confidences must lie in [0, 1]")
    return c, y


def bin_index(conf: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Bin i holds [i/n, (i+1)/n); the last bin also holds 1.0."""
    return np.minimum(np.floor(conf * n_bins).astype(int), n_bins - 1)


def reliability_bins(conf: Sequence[float], correct: Sequence[bool], n_bins: int = N_BINS) -> list[dict]:
    """Per bin: its edges, how many predictions fall in it, how many are right, their accuracy and mean confidence."""
    c, y = _check(conf, correct)
    idx = bin_index(c, n_bins)
    out = []
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        out.append({
            "lo": b / n_bins,
            "hi": (b + 1) / n_bins,
            "count": n,
            "correct": int(y[m].sum()),
            "accuracy": float(y[m].mean()) if n else None,
            "mean_confidence": float(c[m].mean()) if n else None,
        })
    return out


def ece(conf: Sequence[float], correct: Sequence[bool], n_bins: int = N_BINS) -> float | None:
    """Expected calibration error: Σ_b (n_b / N) · |accuracy_b − mean confidence_b|."""
    c, _ = _check(conf, correct)
    if c.size == 0:
        return None
    total = 0.0
    for b in reliability_bins(conf, correct, n_bins):
        if b["count"]:
            total += b["count"] / c.size * abs(b["accuracy"] - b["mean_confidence"])
    return float(total)


def average_ranks(x: Sequence[float]) -> np.ndarray:
    """1-based ranks of x, tied values sharing the mean of the ranks they span."""
    a = np.asarray(x, dtype=float)
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # rank of the last member of each group of equal values
    return (last - (counts - 1) / 2.0)[inverse]


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """P(score of a random positive > score of a random negative) + ½ P(equal).

    From ranks: (R₊ − n₊(n₊+1)/2) / (n₊ n₋), where R₊ is the sum of the
    positives' average ranks. None when there are no positives or no negatives.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    if s.shape != y.shape:
        raise ValueError("scores and labels differ in shape")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    r = average_ranks(s)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def brier(conf: Sequence[float], correct: Sequence[bool]) -> float | None:
    c, y = _check(conf, correct)
    return float(np.mean((c - y) ** 2)) if c.size else None


def describe(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "median": None}
    return {"n": int(v.size), "mean": float(v.mean()), "median": float(np.median(v))}


def summarize(conf: Sequence[float], correct: Sequence[bool], n_bins: int = N_BINS) -> dict:
    """Everything the report shows about one kind of confidence of one model."""
    c, y = _check(conf, correct)
    return {
        "mean": float(c.mean()) if c.size else None,
        "median": float(np.median(c)) if c.size else None,
        "mean_when_correct": float(c[y].mean()) if y.any() else None,
        "mean_when_wrong": float(c[~y].mean()) if (~y).any() else None,
        "ece": ece(c, y, n_bins),
        "auroc": auroc(c, y),
        "brier": brier(c, y),
        "bins": reliability_bins(c, y, n_bins),
    }


def histogram(values: Sequence[float], n_bins: int = 20) -> dict:
    """Counts on equal-width bins of [0, 1] (1.0 in the last bin)."""
    v = np.asarray(values, dtype=float)
    idx = bin_index(v, n_bins)
    return {"edges": [b / n_bins for b in range(n_bins + 1)],
            "counts": [int((idx == b).sum()) for b in range(n_bins)]}


# ---- figures ---------------------------------------------------------------------
def plot_reliability(path: Path, title: str, kinds: dict[str, dict]) -> Path:
    """One panel per kind of confidence: accuracy per bin against the diagonal, with bin counts."""

    fig, axes = plt.subplots(1, len(kinds), figsize=(4.6 * len(kinds), 3.8), squeeze=False)
    for ax, (label, s) in zip(axes[0], kinds.items()):
        bins = s["bins"]
        width = bins[0]["hi"] - bins[0]["lo"]
        xs = [b["lo"] for b in bins]
        acc = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
        ax.bar(xs, acc, width=width, align="edge", color="tab:blue", alpha=0.75, edgecolor="white", label="accuracy")
        mc = [(b["lo"] + width / 2, b["mean_confidence"]) for b in bins if b["count"]]
        if mc:
            ax.plot(*zip(*mc), "o", color="tab:red", ms=4, label="mean confidence")
        ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=1)
        for b, a in zip(bins, acc):
            if b["count"]:
                ax.text(b["lo"] + width / 2, min(a, 0.93) + 0.02, f"n={b['count']}", ha="center", fontsize=7)
        e = s["ece"]
        au = s["auroc"]
        ax.set_title(f"{label}\nECE {e:.3f} · AUROC {'–' if au is None else f'{au:.3f}'}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10, y=1.04)
    save(fig, path)
    return path
