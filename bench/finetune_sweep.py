"""Held-out accuracy of one pretrained model under several finetuning settings.

A curve (`factgpt curve`) finetunes every probe as its profile says; this asks
whether another finetuning would get more of the stored facts out of the same
pretrained weights. Each setting finetunes a fresh copy on the training pairs
minus the held-out slice, then scores greedy answers on the slice and the line
recall after finetuning. birth_dev.tsv is not touched. With several --seeds
every setting is finetuned once per seed (the finetuning's order of batches and
its random state), seed after seed, and the table gives mean ± std. Writes the
JSON after every finetuning, so a run that is stopped keeps what it measured.

    python bench/finetune_sweep.py --profile configs/curves/front80_qkey_cos120.json \\
        --pretrained results/course_keyed/curve/front80_qkey_cos120/pretrain.safetensors --settings 10:6e-4 3:6e-4 10:2e-4 --seeds 0 1 2 \\
        --out results/course_keyed/finetune_sweep/front80_qkey_cos120.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from factgpt.curve import HeldoutProbe
from factgpt.experiment import provenance
from factgpt.fileio import bundled_path, write_text_atomic
from factgpt.pipeline import load_corpus, load_for, load_profile
from factgpt.results import mean_std
from factgpt.train import model_from_state


def parse_setting(text: str) -> tuple[int, float, int | None]:
    """EPOCHS:LR or EPOCHS:LR:BATCH, e.g. 10:6e-4 or 3:6e-4:64 (without BATCH: the profile's batch)."""
    try:
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError
        return int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected EPOCHS:LR[:BATCH] such as 10:6e-4 or 3:6e-4:64, got {text!r}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", required=True, help="the profile the model was pretrained with")
    ap.add_argument("--pretrained", required=True,
                    help="a pretrained checkpoint (a curve's pretrain.safetensors) or the training state of a "
                         "pretraining stopped on time (pretrain.safetensors.state)")
    ap.add_argument("--settings", type=parse_setting, nargs="+", required=True, metavar="EPOCHS:LR[:BATCH]")
    ap.add_argument("--variant", default="vanilla")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="finetuning seeds, each setting once per seed")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    device = torch.device("cpu")
    profile = load_profile(args.profile)
    corpus = load_corpus(bundled_path("wiki.txt"))
    slice_ = HeldoutProbe.of(profile)  # the same slice and finetuning pairs as a curve's probes

    def pretrained():
        """A fresh copy of the pretrained weights, from a checkpoint or a stopped run's training state."""
        if args.pretrained.endswith(".state"):
            model, meta = model_from_state(args.pretrained)
            if model.config.variant != args.variant:
                raise SystemExit(f"{args.pretrained}: the state is of the {model.config.variant} variant")
            return model.to(device), {"steps": meta["progress"]["step"], "epoch": meta["progress"]["epoch"]}
        return load_for(args.pretrained, corpus, args.variant, device)

    base, meta = pretrained()
    record = {"profile": profile.to_dict(), "pretrained": args.pretrained, "pretrained_steps": meta.get("steps"),
              "pretrained_epoch": meta.get("epoch"),
              "variant": args.variant, "seeds": args.seeds, "heldout": len(slice_.held),
              "finetune_pairs": len(slice_.data.finetune),
              **provenance(device, "python bench/finetune_sweep.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])),
              "line_recall_pretrained": slice_.stored(base),
              "settings": [{"epochs": e, "learning_rate": lr, "batch_size": b, "runs": []} for e, lr, b in args.settings]}
    # Seeds outermost: a sweep stopped early still holds every setting at the first seeds.
    for seed in args.seeds:
        for (epochs, lr, batch), row in zip(args.settings, record["settings"]):
            t0 = time.time()
            model, _ = pretrained()
            scored = slice_.finetune_and_score(model, seed, device, max_epochs=epochs, learning_rate=lr,
                                               batch_size=batch)
            row["batch_size"] = scored.pop("batch_size")
            row["runs"].append({"seed": seed, **scored, "seconds": time.time() - t0})
            row["heldout_accuracy"] = mean_std([r["heldout_accuracy"] for r in row["runs"]])
            print(f"seed {seed}: {epochs} epochs at lr {lr:g}, batch {row['batch_size']}: held-out "
                  f"{scored['heldout_correct']}/{scored['heldout_total']} = {scored['heldout_accuracy']:.1f}%",
                  file=sys.stderr, flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.out, json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
