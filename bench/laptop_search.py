"""Score one training profile on the held-out slice of the training pairs.

Pretrains with the profile (or loads a model it pretrained), finetunes on the
training pairs minus the fixed held-out slice (factgpt/heldout.py) with the
profile's finetune settings, and scores greedy answers on the slice.
birth_dev.tsv is never scored: it only keeps the slice apart from dev.
Writes results/laptop/search/<name>.json: settings → held-out accuracy, seconds.

    python bench/laptop_search.py --name lr3e-3 --profile laptop --set pretrain.learning_rate=3e-3
    python bench/laptop_search.py --name ft20 --pretrained v.safetensors --pretrain_seconds 450 \\
        --set finetune_pretrained.max_epochs=20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from factgpt.batches import TensorExamples
from factgpt.checkpoint import load_model
from factgpt.datasets import NameDataset, parse_tsv
from factgpt.evaluate import accuracy, predict
from factgpt.fileio import bundled_path, read_text, write_text_atomic
from factgpt.heldout import split_heldout, to_tsv
from factgpt.model import GPT
from factgpt.config import Profile
from factgpt.pipeline import load_corpus, load_profile, model_config, pretrain_source, stage_config, train_stage
from factgpt.runinfo import device_name, git_commit


def apply_overrides(prof: Profile, sets: list[str]) -> Profile:
    """`section.key=value` (value parsed as JSON when it can be), checked like a profile file's."""
    for s in sets:
        key, _, raw = s.partition("=")
        section, _, name = key.partition(".")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        prof = prof.with_settings(**{section: {name: value}})
    return prof


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--profile", default="laptop")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--variant", default="vanilla", choices=["vanilla", "synthesizer"])
    ap.add_argument("--pretrained", default=None, help="skip pretraining: a model this profile pretrained")
    ap.add_argument("--pretrain_seconds", type=float, default=None, help="its pretraining time, when known")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/laptop/search")
    a = ap.parse_args()

    prof = apply_overrides(load_profile(a.profile), a.set)
    corpus = load_corpus(bundled_path("wiki.txt"))
    vocab = corpus.vocab
    rows = parse_tsv(read_text(bundled_path("birth_places_train.tsv")), "train", True)
    dev = {r.question for r in parse_tsv(read_text(bundled_path("birth_dev.tsv")), "dev", True)}
    ft_rows, held = split_heldout(rows, corpus.text, exclude=dev)
    n_docs = corpus.n_docs
    device = torch.device("cpu")
    record = {"name": a.name, "profile": prof.to_dict(), "variant": a.variant, "seed": a.seed,
              "command": "python " + " ".join(sys.argv), "device": device_name(device), "torch": torch.__version__,
              "commit": git_commit(), "heldout": len(held), "finetune_pairs": len(ft_rows)}

    if a.pretrained:
        model, _ = load_model(a.pretrained, vocab=vocab, variant=a.variant, device=device)
        record.update(pretrained_from=a.pretrained, pretrain_seconds=a.pretrain_seconds)
    else:
        torch.manual_seed(a.seed)
        mcfg = model_config(prof, vocab, a.variant)
        model = GPT(mcfg)
        src = pretrain_source(corpus, mcfg.block_size, True, a.seed, prof.data)
        t0 = time.time()
        pre, _ = train_stage(model, src, stage_config(prof, "pretrain", n_docs, seed=a.seed), device, None, vocab,
                             f"pretrain {a.name}")
        last = pre.progress.history[-20:]
        record.update(pretrain_seconds=time.time() - t0, pretrain_steps=pre.progress.step,
                      pretrain_loss=sum(h["loss"] for h in last) / len(last))
        model = pre.model

    torch.manual_seed(a.seed)
    src = TensorExamples(NameDataset(vocab, to_tsv(ft_rows), model.config.block_size))
    t0 = time.time()
    ft, _ = train_stage(model, src, stage_config(prof, "finetune_pretrained", n_docs, seed=a.seed), device, None,
                        vocab, f"finetune {a.name}")
    record.update(finetune_seconds=time.time() - t0, finetune_loss=ft.progress.history[-1]["loss"])
    t0 = time.time()
    preds = predict(ft.model, vocab, [r.question for r in held])
    correct, total = accuracy(held, [p.text for p in preds])
    record.update(evaluate_seconds=time.time() - t0, heldout_correct=correct, heldout_accuracy=100.0 * correct / total)
    out = Path(a.out) / f"{a.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(record, indent=1) + "\n")
    print(f"{a.name}: held-out {correct}/{total} = {100.0 * correct / total:.1f}% "
          f"(finetune loss {record['finetune_loss']:.3f}); wrote {out}")


if __name__ == "__main__":
    main()
