"""Held-out accuracy against CPU minutes for one pretraining recipe of the course model.

Pretrains with the given settings; every --probe_every epochs it finetunes a
copy on the training pairs minus a fixed held-out slice (the course's
finetune: 10 epochs, batch 256, lr 6e-4) and scores greedy answers on the
slice. birth_dev.tsv is not touched. Writes results/laptop/search/<name>.json
after every probe, so a run that is stopped keeps what it measured.

    python bench/laptop_probe.py --name trunc64_lr2e-3 --minutes 30 --max_chars 64 --learning_rate 2e-3
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from factgpt.datasets import documents
from factgpt.batches import BatchedCorruption, TensorExamples
from factgpt.datasets import NameDataset, parse_tsv
from factgpt.evaluate import accuracy, predict
from factgpt.fileio import bundled_path, read_text, write_text_atomic
from factgpt.heldout import split_heldout, to_tsv
from factgpt.model import GPT, GPTConfig
from factgpt.runinfo import device_name, git_commit
from factgpt.train import Trainer, TrainConfig
from factgpt.vocab import Vocab


class OutOfBudget(Exception):
    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--minutes", type=float, default=30.0, help="pretraining budget (probes not counted)")
    ap.add_argument("--epochs", type=int, default=60, help="schedule length: the cosine reaches its floor here")
    ap.add_argument("--probe_every", type=int, default=10)
    ap.add_argument("--max_chars", type=int, default=None)
    ap.add_argument("--learning_rate", type=float, default=6e-3)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--decay_matmul_weights_only", action="store_true")
    ap.add_argument("--shuffle", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/laptop/search")
    a = ap.parse_args()

    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    rows = parse_tsv(read_text(bundled_path("birth_places_train.tsv")), "train", True)
    dev = {r.question for r in parse_tsv(read_text(bundled_path("birth_dev.tsv")), "dev", True)}
    ft_rows, held = split_heldout(rows, text, exclude=dev)  # dev only keeps the slice apart, never scores
    ft_src = TensorExamples(NameDataset(vocab, to_tsv(ft_rows)))
    n_docs = len(documents(text))
    src = BatchedCorruption(text, vocab, 128, max_chars=a.max_chars)
    total_tokens = a.epochs * n_docs * 127
    cfg = TrainConfig(max_epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.learning_rate,
                      warmup_tokens=total_tokens // 100, final_tokens=total_tokens, shuffle=a.shuffle,
                      decay_norms_and_embeddings=not a.decay_matmul_weights_only, seed=a.seed)
    torch.manual_seed(a.seed)
    d = a.dropout
    model = GPT(GPTConfig(len(vocab), embd_pdrop=d, resid_pdrop=d, attn_pdrop=d))
    trainer = Trainer(model, src, cfg)
    record = {"name": a.name, "settings": vars(a), "command": "python " + " ".join(sys.argv),
              "device": device_name(torch.device("cpu")), "torch": torch.__version__, "commit": git_commit(),
              "heldout": len(held), "finetune_pairs": len(ft_rows), "probes": []}
    out = Path(a.out) / f"{a.name}.json"
    Path(a.out).mkdir(parents=True, exist_ok=True)
    pretrain_s = 0.0
    t_epoch = time.time()

    def probe(tr: Trainer) -> None:
        nonlocal pretrain_s, t_epoch
        pretrain_s += time.time() - t_epoch
        ep = tr.progress.epoch
        if ep % a.probe_every == 0 or pretrain_s >= a.minutes * 60 or ep == a.epochs:
            t0 = time.time()
            m = copy.deepcopy(tr.model)
            ft = Trainer(m, ft_src, TrainConfig(max_epochs=10, batch_size=256, learning_rate=6e-4,
                                                warmup_tokens=10240, final_tokens=200 * n_docs * 128, seed=a.seed))
            ft.train(progress_bar=False)
            preds = predict(ft.model, vocab, [r.question for r in held])
            correct, total = accuracy(held, [p.text for p in preds])
            losses = [h["loss"] for h in tr.progress.history[-20:]]
            record["probes"].append({"epoch": ep, "step": tr.progress.step, "pretrain_minutes": pretrain_s / 60,
                                     "pretrain_loss": sum(losses) / len(losses),
                                     "finetune_loss": ft.progress.history[-1]["loss"],
                                     "heldout_correct": correct, "heldout_accuracy": 100.0 * correct / total,
                                     "probe_seconds": time.time() - t0})
            write_text_atomic(out, json.dumps(record, indent=1) + "\n")
            print(json.dumps(record["probes"][-1]), flush=True)
        if pretrain_s >= a.minutes * 60:
            raise OutOfBudget
        t_epoch = time.time()

    try:
        trainer.train(progress_bar=False, on_epoch_end=probe)
    except OutOfBudget:
        pass


if __name__ == "__main__":
    main()
