"""Score one training profile on the held-out slice of the training pairs.

Pretrains with the profile (or loads a model it pretrained), finetunes on the
training pairs minus the fixed held-out slice (factgpt/heldout.py) with the
profile's finetune settings, and scores greedy answers on the slice.
birth_dev.tsv is never scored: it only keeps the slice apart from dev.
Writes results/course_keyed/search/<name>.json: settings → held-out accuracy, seconds.

    python bench/laptop_search.py --name lr3e-3 --profile course_keyed --set pretrain.learning_rate=3e-3
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

from factgpt.checkpoint import load_model
from factgpt.config import Profile
from factgpt.evaluate import predict
from factgpt.experiment import DataBundle, Score, finetune_on, provenance
from factgpt.fileio import write_text_atomic
from factgpt.pipeline import load_profile, pretrain_stage


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
    ap.add_argument("--profile", default="course_keyed")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--variant", default="vanilla", choices=["vanilla", "synthesizer"])
    ap.add_argument("--pretrained", default=None, help="skip pretraining: a model this profile pretrained")
    ap.add_argument("--pretrain_seconds", type=float, default=None, help="its pretraining time, when known")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/course_keyed/search")
    a = ap.parse_args()

    prof = apply_overrides(load_profile(a.profile), a.set)
    data = DataBundle.load(prof.model.block_size)
    vocab, held = data.vocab, data.heldout
    device = torch.device("cpu")
    record = {"name": a.name, "profile": prof.to_dict(), "variant": a.variant, "seed": a.seed,
              **provenance(device, "python " + " ".join(sys.argv)), "heldout": len(held),
              "finetune_pairs": len(data.finetune)}

    if a.pretrained:
        model, _ = load_model(a.pretrained, vocab=vocab, variant=a.variant, device=device)
        record.update(pretrained_from=a.pretrained, pretrain_seconds=a.pretrain_seconds)
    else:
        t0 = time.time()
        pre, _ = pretrain_stage(prof, data.corpus, a.variant, device, None, f"pretrain {a.name}",
                                train_overrides={"seed": a.seed})
        last = pre.progress.history[-20:]
        record.update(pretrain_seconds=time.time() - t0, pretrain_steps=pre.progress.step,
                      pretrain_loss=sum(h["loss"] for h in last) / len(last))
        model = pre.model

    t0 = time.time()
    ft = finetune_on(model, data, prof, a.seed, device, f"finetune {a.name}", quiet=False)
    record.update(finetune_seconds=time.time() - t0, finetune_loss=ft.progress.history[-1]["loss"])
    t0 = time.time()
    score = Score.of(held, [p.text for p in predict(ft.model, vocab, [r.question for r in held])])
    correct, total = score.correct, score.total
    record.update(evaluate_seconds=time.time() - t0, heldout_correct=correct, heldout_accuracy=score.accuracy)
    out = Path(a.out) / f"{a.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(record, indent=1) + "\n")
    print(f"{a.name}: held-out {correct}/{total} = {100.0 * correct / total:.1f}% "
          f"(finetune loss {record['finetune_loss']:.3f}); wrote {out}")


if __name__ == "__main__":
    main()
