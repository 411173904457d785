"""Does the fast path learn like the reference path, and bf16 like fp32? Same runs, several seeds.

For each path and seed: a reduced-scale pretraining (small model, course
learning rate and schedule shape) followed by finetuning and greedy dev
evaluation. Writes the loss curves and dev accuracies, and whether the
candidate's curve stays inside the baseline's seed-to-seed spread:

    python bench/learning_equivalence.py [--seeds 0 1] [--epochs 8] [--out results/bench]
        reference path (fp32) against the fast path (fp32): learning-equivalence.json
    python bench/learning_equivalence.py --compare bf16
        the fast path in fp32 against the fast path in bf16 autocast, on this
        device: learning-equivalence-bf16-<device>.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from factgpt.datasets import documents
from factgpt.batches import BatchedCorruption, DatasetSource, TensorExamples
from factgpt.benchmark import device_slug
from factgpt.datasets import CharCorruptionDataset, NameDataset, parse_tsv
from factgpt.evaluate import accuracy, predict
from factgpt.fileio import bundled_path, read_text, run_folder, write_text_atomic
from factgpt.model import GPT, GPTConfig
from factgpt.runinfo import device_name, git_commit
from factgpt.train import Trainer, TrainConfig
from factgpt.vocab import Vocab

SIZE = dict(n_layer=2, n_head=4, n_embd=128)
PATHS = {"reference": dict(pack=False, reference=True, precision="fp32"),
         "fast": dict(pack=None, reference=False, precision="fp32"),
         "fast-bf16": dict(pack=None, reference=False, precision="bf16")}
# --compare: (baseline, candidate) paths, and the file the verdict goes to.
COMPARISONS = {"paths": ("reference", "fast"), "bf16": ("fast", "fast-bf16")}


def run(path: str, seed: int, epochs: int, ft_epochs: int) -> dict:
    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    n_docs = len(documents(text))
    common = dict(warmup_tokens=10240, final_tokens=200 * n_docs * 128, seed=seed, **PATHS[path])
    torch.manual_seed(seed)
    model = GPT(GPTConfig(len(vocab), **SIZE))
    src = (DatasetSource(CharCorruptionDataset(text, 128, vocab, seed=seed)) if path == "reference"
           else BatchedCorruption(text, vocab, 128))
    t0 = time.time()
    pre = Trainer(model, src, TrainConfig(max_epochs=epochs, batch_size=128, learning_rate=6e-3, **common))
    pre.train(progress_bar=False)
    t_pre = time.time() - t0
    ds = NameDataset(vocab, read_text(bundled_path("birth_places_train.tsv")))
    fsrc = DatasetSource(ds) if path == "reference" else TensorExamples(ds)
    ft = Trainer(pre.model, fsrc, TrainConfig(max_epochs=ft_epochs, batch_size=256, learning_rate=6e-4, **common))
    ft.train(progress_bar=False)
    rows = parse_tsv(read_text(bundled_path("birth_dev.tsv")), "birth_dev.tsv", True)
    preds = predict(ft.model, vocab, [r.question for r in rows])
    correct, total = accuracy(rows, [p.text for p in preds])
    return {"path": path, "seed": seed, "pretrain_losses": [h["loss"] for h in pre.progress.history],
            "finetune_losses": [h["loss"] for h in ft.progress.history], "dev_correct": correct,
            "dev_accuracy": 100.0 * correct / total, "pretrain_seconds": t_pre,
            "precision": pre.precision}


def windowed(v: list[float], k: int = 20) -> list[float]:
    return [statistics.fmean(v[i : i + k]) for i in range(0, len(v) - k + 1, k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--finetune_epochs", type=int, default=10)
    ap.add_argument("--out", default=None, help="folder for the JSON (default: a new runs/bench-DATE-TIME; results/bench for the committed ones)")
    ap.add_argument("--compare", choices=sorted(COMPARISONS), default="paths",
                    help="paths: the reference against the fast path; bf16: the fast path in fp32 against bf16")
    a = ap.parse_args()
    a.out = run_folder(a.out, "bench")
    base, cand = COMPARISONS[a.compare]
    runs = []
    for seed in a.seeds:
        for path in (base, cand):
            print(f"{path} seed {seed} ...", file=sys.stderr, flush=True)
            runs.append(run(path, seed, a.epochs, a.finetune_epochs))
            print(f"  dev {runs[-1]['dev_accuracy']:.1f}%, last loss {runs[-1]['pretrain_losses'][-1]:.3f}, "
                  f"{runs[-1]['pretrain_seconds']:.0f} s", file=sys.stderr, flush=True)
    # Loss curves in 20-step windows: the candidate's mean must sit inside the
    # baseline seeds' range widened by their own spread.
    ref = [windowed(r["pretrain_losses"]) for r in runs if r["path"] == base]
    fast = [windowed(r["pretrain_losses"]) for r in runs if r["path"] == cand]
    inside = []
    for w in range(len(ref[0])):
        lo, hi = min(c[w] for c in ref), max(c[w] for c in ref)
        spread = max(hi - lo, 1e-3)
        f = statistics.fmean(c[w] for c in fast)
        inside.append(lo - spread <= f <= hi + spread)
    acc = {p: [r["dev_accuracy"] for r in runs if r["path"] == p] for p in (base, cand)}
    out = {
        "command": "python " + " ".join(sys.argv), "device": device_name(torch.device("cpu")),
        "baseline": base, "candidate": cand, "paths": {p: PATHS[p] for p in (base, cand)},
        "torch": torch.__version__, "commit": git_commit(), "model": SIZE, "seeds": a.seeds,
        "pretrain_epochs": a.epochs, "finetune_epochs": a.finetune_epochs,
        "windows_inside_baseline_spread": f"{sum(inside)}/{len(inside)}",
        "all_windows_inside": all(inside),
        "dev_accuracy": {p: {"per_seed": v, "mean": statistics.fmean(v),
                             "std": statistics.stdev(v) if len(v) > 1 else 0.0} for p, v in acc.items()},
        "runs": runs,
    }
    name = ("learning-equivalence.json" if a.compare == "paths"
            else f"learning-equivalence-{a.compare}-{device_slug(torch.device('cpu'))}.json")
    a.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.out / name, json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("windows_inside_baseline_spread", "dev_accuracy")}, indent=1))


if __name__ == "__main__":
    main()
