"""Which dev questions the model gets right, split by what pretraining could have shown it.

Each split puts every dev question in exactly one bucket:

- wiki_line: whether the person has a line in wiki.txt (people.line_name
  reads the name, initials included);
- place_in_line: whether the gold place occurs in the line as the model's
  pretraining showed it (changed as its data settings say, then cut where
  it was cut: 112 characters for the course's span corruption, a profile's
  or recipe's max_chars), only after that cut, not in the line at all, or
  there is no line;
- place_train_frequency: how often the gold place is a training answer;
- name_length (characters) and name_words.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

from ..config import DataSettings
from ..datasets import QA, documents
from ..lines import change_lines
from ..heldout import name_of
from ..people import line_name
from ..plots import plt
from .figures import save

SPLITS: dict[str, tuple[str, list[str]]] = {
    "wiki_line": ("person has a wiki.txt line", ["has a line", "no line"]),
    "place_in_line": ("gold place in the line as pretraining showed it",
                      ["within the cut", "only after the cut", "not in the line", "no line"]),
    "place_train_frequency": ("times the gold place is a training answer", ["0", "1–2", "3–9", "≥10"]),
    "name_length": ("name length (characters)", ["≤11", "12–14", "15–17", "≥18"]),
    "name_words": ("words in the name", ["2", "3", "≥4"]),
}


# Axis labels that fit under a bar.
SHORT = {"within the cut": "within\nthe cut", "only after the cut": "after\nthe cut",
         "not in the line": "not in\nthe line", "no line": "no\nline", "has a line": "has a\nline"}


def corpus_lines(wiki_text: str) -> dict[str, list[str]]:
    """Each person's wiki.txt lines (a few names have more than one)."""
    lines: dict[str, list[str]] = defaultdict(list)
    for doc in documents(wiki_text):
        lines[line_name(doc)].append(doc)
    return dict(lines)


def _freq_bucket(k: int) -> str:
    return "0" if k == 0 else "1–2" if k <= 2 else "3–9" if k <= 9 else "≥10"


def _length_bucket(n: int) -> str:
    return "≤11" if n <= 11 else "12–14" if n <= 14 else "15–17" if n <= 17 else "≥18"


def features(rows: Sequence[QA], wiki_text: str, train_answers: Sequence[str],
             data: DataSettings = DataSettings(), cut: int = 112) -> list[dict[str, str]]:
    """The bucket of every split for each dev question; data and cut: how the model's
    pretraining changed and cut each line (answers.ModelView)."""
    lines = corpus_lines(wiki_text)
    seen: dict[str, list[str]] = defaultdict(list)  # each person's lines as pretraining changed them
    for before, after in zip(documents(wiki_text), documents(change_lines(wiki_text, data)), strict=True):
        seen[line_name(before)].append(after)
    freq = Counter(train_answers)
    out = []
    for r in rows:
        name = name_of(r.question) or r.question
        own = lines.get(name, [])
        shown = seen.get(name, [])
        if not own:
            where = "no line"
        elif any(r.answer in line[:cut] for line in shown):
            where = "within the cut"
        elif any(r.answer in line for line in shown):
            where = "only after the cut"
        else:
            where = "not in the line"
        words = len(name.split())
        out.append({
            "wiki_line": "has a line" if own else "no line",
            "place_in_line": where,
            "place_train_frequency": _freq_bucket(freq[r.answer]),
            "name_length": _length_bucket(len(name)),
            "name_words": str(words) if words < 4 else "≥4",
        })
    return out


def splits(feats: Sequence[dict[str, str]], correct: Sequence[bool], conf: Sequence[float]) -> dict:
    """Per split and bucket: questions, right answers, accuracy and mean confidence (empty buckets kept)."""
    assert len(feats) == len(correct) == len(conf)
    out = {}
    for key, (title, buckets) in SPLITS.items():
        table = []
        for b in buckets:
            idx = [i for i, f in enumerate(feats) if f[key] == b]
            n = len(idx)
            k = sum(bool(correct[i]) for i in idx)
            table.append({"bucket": b, "n": n, "correct": k, "accuracy": k / n if n else None,
                          "mean_confidence": sum(conf[i] for i in idx) / n if n else None})
        out[key] = {"title": title, "buckets": table}
    return out


def examples(rows: Sequence[QA], preds: Sequence, feats: Sequence[dict], seed: int, k: int = 10) -> dict:
    """k right and k wrong answers drawn with a seeded generator, and the k most confident wrong ones."""
    def item(i: int) -> dict:
        return {"question": rows[i].question, "gold": rows[i].answer, "prediction": preds[i].text,
                "confidence": preds[i].prob, "first_char_confidence": preds[i].first_prob,
                "place_in_line": feats[i]["place_in_line"]}

    right = [i for i, (r, p) in enumerate(zip(rows, preds)) if r.answer == p.text]
    wrong = [i for i, (r, p) in enumerate(zip(rows, preds)) if r.answer != p.text]
    rng = random.Random(seed)
    pick = lambda idx: sorted(rng.sample(idx, min(k, len(idx))))  # noqa: E731
    sure_wrong = sorted(wrong, key=lambda i: (-preds[i].prob, i))[:k]
    return {"correct": [item(i) for i in pick(right)], "wrong": [item(i) for i in pick(wrong)],
            "most_confident_wrong": [item(i) for i in sure_wrong]}


def plot_splits(path: Path, res: dict, model: str) -> Path:

    keys = list(SPLITS)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3.8), sharey=True)
    for ax, key in zip(axes, keys):
        t = res[key]
        labels = [SHORT.get(b["bucket"], b["bucket"]) for b in t["buckets"]]
        acc = [100 * (b["accuracy"] or 0.0) for b in t["buckets"]]
        ax.bar(range(len(acc)), acc, color="tab:green", alpha=0.8)
        for x, (a, b) in enumerate(zip(acc, t["buckets"])):
            ax.text(x, a + 1, f"n={b['n']}", ha="center", fontsize=7)
        ax.set_xticks(range(len(acc)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(t["title"], fontsize=8)
    axes[0].set_ylabel("dev accuracy (%)")
    top = max([100 * (b["accuracy"] or 0.0) for k in keys for b in res[k]["buckets"]] + [10])
    axes[0].set_ylim(0, min(100, top * 1.2) + 2)
    fig.suptitle(f"{model}: dev accuracy by split", fontsize=10)
    save(fig, path)
    return path
