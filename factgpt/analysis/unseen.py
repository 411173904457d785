"""Questions about people the model cannot know: names that occur in no data file.

Plausible names are made by recombining first names and surnames of the
people in wiki.txt and the question files (drawn with their frequencies, so
common names come up more often, from a seeded generator), and a name is kept
only if it occurs nowhere, as a substring, in wiki.txt or in any of the
train/dev/test files. Whatever the model answers for such a person is a
guess; the question is what it guesses, and whether its confidence shows it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..datasets import documents
from ..heldout import name_of
from ..people import line_name, name_parts, recombined_names
from . import confidence as C
from ..plots import plt
from .figures import save

MIDDLE_NAME_RATE = 0.15  # some names get a middle name; 21% of the dev names have three or more words
TOP = 15


def pool_names(wiki_text: str, tsv_texts: Iterable[str]) -> list[str]:
    """Every person's name, in file order (wiki.txt lines, then the question files), repeats kept."""
    names = [line_name(doc) for doc in documents(wiki_text)]
    for text in tsv_texts:
        for line in text.split("\n"):
            n = name_of(line.split("\t", 1)[0].rstrip("\r"))
            if n:
                names.append(n)
    return names


def unseen_names(wiki_text: str, tsv_texts: Sequence[str], n: int = 500, seed: int = 0) -> list[str]:
    """n distinct made-up names absent from wiki_text and every TSV text; the same list for the same seed."""
    firsts, lasts = name_parts(pool_names(wiki_text, tsv_texts))
    return recombined_names(firsts, lasts, [wiki_text, *tsv_texts], n, seed, MIDDLE_NAME_RATE)


def question(name: str) -> str:
    return f"Where was {name} born?"


def _top(counter: Counter, total: int, key: str, k: int = TOP) -> list[dict]:
    # most_common breaks ties by first occurrence; sort them by name too, so the table is stable
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [{key: a, "count": c, "share": c / total} for a, c in items]


def total_variation(p: Counter, q: Counter) -> float:
    """½ Σ |p(x) − q(x)| between two empirical distributions."""
    np_, nq = sum(p.values()), sum(q.values())
    return 0.5 * sum(abs(p[x] / np_ - q[x] / nq) for x in set(p) | set(q))


def analyze(names: Sequence[str], unseen_preds: Sequence, dev_preds: Sequence, dev_correct: Sequence[bool],
            train_answers: Sequence[str], full: bool = True) -> dict:
    """What a model answers for unseen people, against the training places and against real dev names.

    full=False leaves out the tables and histograms (for the models other than the main one).
    """
    answers = [p.text for p in unseen_preds]
    ans = Counter(answers)
    train = Counter(train_answers)
    dev_answers = Counter(p.text for p in dev_preds)
    n = len(answers)
    ordered = sorted(ans.values(), reverse=True)
    res: dict = {
        "n_names": n,
        "distinct_answers": len(ans),
        "top1_share": ordered[0] / n if n else None,
        "top5_share": sum(ordered[:5]) / n if n else None,
        "share_training_answers": sum(a in train for a in answers) / n if n else None,
        "dev_share_training_answers": sum(p.text in train for p in dev_preds) / len(dev_preds) if dev_preds else None,
        "total_variation_vs_training_places": total_variation(ans, train) if n else None,
        "total_variation_dev_vs_training_places": total_variation(dev_answers, train) if dev_preds else None,
        "confidence": {},
        # AUROC of confidence for telling a real dev name (positive) from an unseen one: 0.5 = cannot tell apart
        "auroc_dev_vs_unseen": {},
    }
    for kind, attr in (("answer", "prob"), ("first_char", "first_prob")):
        u = [getattr(p, attr) for p in unseen_preds]
        d = [getattr(p, attr) for p in dev_preds]
        res["confidence"][kind] = {
            "unseen": C.describe(u),
            "dev": C.describe(d),
            "dev_correct": C.describe([x for x, ok in zip(d, dev_correct) if ok]),
            "dev_wrong": C.describe([x for x, ok in zip(d, dev_correct) if not ok]),
        }
        res["auroc_dev_vs_unseen"][kind] = C.auroc(d + u, [True] * len(d) + [False] * len(u))
        if full:
            res["confidence"][kind]["histogram"] = {"unseen": C.histogram(u), "dev": C.histogram(d)}
    if full:
        res["top_answers"] = _top(ans, n, "answer")
        res["top_training_places"] = _top(train, len(train_answers), "place")
        res["top_dev_answers"] = _top(dev_answers, len(dev_preds), "answer")
        res["example_names"] = list(names[:12])
    return res


# ---- figures ---------------------------------------------------------------------
def _label(a: str) -> str:
    return a if a else "(empty)"


def plot_answers(path: Path, res: dict, model: str) -> Path:

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, items, key, title, color in (
        (axes[0], res["top_answers"], "answer", f"{model}: answers for {res['n_names']} unseen names", "tab:red"),
        (axes[1], res["top_training_places"], "place", "places in the training file", "tab:gray"),
    ):
        ys = [TOP - 1 - i for i in range(len(items))]  # the most frequent on top, TOP slots in both panels
        shares = [100 * x["share"] for x in items]
        ax.barh(ys, shares, height=0.7, color=color, alpha=0.8)
        ax.set_yticks(ys)
        ax.set_yticklabels([_label(x[key]) for x in items], fontsize=8)
        ax.set_ylim(-0.6, TOP - 0.4)
        ax.set_xlim(0, max(shares + [1.0]) * 1.15)
        ax.set_xlabel("share (%)")
        ax.set_title(title, fontsize=9)
        for y, s in zip(ys, shares):
            ax.text(s, y, f" {s:.1f}", va="center", fontsize=7)
    save(fig, path)
    return path


def plot_confidence(path: Path, res: dict, model: str,
                    kinds: Sequence[tuple[str, str]] = (("answer", "probability of the answer"),
                                                        ("first_char", "probability of its first character"))) -> Path:
    """Histogram overlay of the confidence given to real dev names and to unseen names."""

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (kind, title) in zip(axes, kinds):
        h = res["confidence"][kind]["histogram"]
        edges = h["dev"]["edges"]
        w = edges[1] - edges[0]
        for which, color, label in (("dev", "tab:blue", "real dev names"), ("unseen", "tab:red", "unseen names")):
            ax.bar(edges[:-1], h[which]["counts"], width=w, align="edge", alpha=0.5, color=color,
                   label=f"{label} (mean {res['confidence'][kind][which]['mean']:.3f})")
        au = res["auroc_dev_vs_unseen"][kind]
        ax.set_title(f"{model}: {title}\nAUROC real vs unseen {'–' if au is None else f'{au:.3f}'}", fontsize=9)
        ax.set_xlabel("confidence")
        ax.set_ylabel("questions")
        ax.set_xlim(0, 1)
        ax.legend(fontsize=7)
    save(fig, path)
    return path
