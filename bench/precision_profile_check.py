"""Does a profile's own pretraining learn the same in bf16 as in fp32 on this CPU? The check `auto` needs.

bench/learning_equivalence.py --compare bf16 screens a CPU kind with a reduced model for 184 steps and
compares losses only; its runs answer nothing, so it cannot say whether bf16 stores the facts. This
check trains the profile itself, its model and its schedule, in fp32 and in bf16 autocast from the
same seeds and batches (`factgpt curve` runs, probed on the held-out slice; dev is never used), and
passes only if, with at least three seeds and at least 500 pretraining steps:

- at every probe, bf16's mean pretraining loss lies inside fp32's seed range widened by that range;
- at the last probe, bf16's mean held-out accuracy lies inside fp32's seed range widened by that range.

It also compares the runs' pretraining minutes (medians a precision): bf16 is worth switching on
only where it is cheaper, at most 90% of fp32's minutes. A file that passed with bf16 cheaper
(`auto_bf16`) is what lets `--precision auto` train that profile in bf16 on this CPU kind
(factgpt/precision.py: BF16_PROFILE_CHECKS; a test keeps the two in step). Runs already finished
in OUT are kept, so a stopped check goes on where it was:

    python bench/precision_profile_check.py --profile wordkeys_small_e70 --seeds 0 1 2
    python bench/precision_profile_check.py --profile course_keyed --max_epochs 40 --seeds 0 1 2

Writes OUT/<precision>-s<seed>/curve.json for each run (OUT: runs/precision-profile-check-PROFILE) and
results/bench/precision-profile-<profile>-<cpu>.json with the verdict.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import astuple
from pathlib import Path

import torch

from factgpt.benchmark import device_slug
from factgpt.config import same_training
from factgpt.curve import run_curve
from factgpt.errors import InputError
from factgpt.fileio import bundled_path, write_text_atomic
from factgpt.pipeline import load_corpus, load_profile, stage_config
from factgpt.runinfo import cpu_kind, device_name, git_commit

MIN_SEEDS, MIN_STEPS = 3, 500
CHEAPER = 0.9  # bf16 pays where its pretraining takes at most this share of fp32's minutes
PRECISIONS = ("fp32", "bf16")


def widened(values: list[float]) -> tuple[float, float]:
    """fp32's seed range widened on each side by its own width: what seed-to-seed noise allows."""
    lo, hi = min(values), max(values)
    return lo - (hi - lo), hi + (hi - lo)


def verdict(runs: dict[str, list[dict]]) -> dict:
    """Compare the runs' probes: runs[precision] is one curve record a seed, the same seeds in each."""
    seeds = len(runs["fp32"])
    steps = min(r["probes"][-1]["step"] for rs in runs.values() for r in rs) if seeds else 0
    epochs = sorted({p["epoch"] for r in runs["fp32"] for p in r["probes"]})
    windows = []
    for ep in epochs:
        at = {prec: [next(p for p in r["probes"] if p["epoch"] == ep) for r in rs] for prec, rs in runs.items()}
        lo, hi = widened([p["pretrain_loss"] for p in at["fp32"]])
        mean = statistics.fmean(p["pretrain_loss"] for p in at["bf16"])
        windows.append({"epoch": ep, "fp32_loss": [p["pretrain_loss"] for p in at["fp32"]],
                        "bf16_loss": [p["pretrain_loss"] for p in at["bf16"]],
                        "allowed": [lo, hi], "bf16_mean": mean, "inside": lo <= mean <= hi})
    last = epochs[-1] if epochs else None
    acc = {prec: [next(p for p in r["probes"] if p["epoch"] == last)["heldout_accuracy"] for r in rs]
           for prec, rs in runs.items()} if last is not None else {"fp32": [], "bf16": []}
    lo, hi = widened(acc["fp32"]) if acc["fp32"] else (0.0, 0.0)
    acc_mean = statistics.fmean(acc["bf16"]) if acc["bf16"] else float("nan")
    enough = seeds >= MIN_SEEDS and steps >= MIN_STEPS
    losses_inside = all(w["inside"] for w in windows)
    accuracy_inside = lo <= acc_mean <= hi
    passed = enough and losses_inside and accuracy_inside
    return {"seeds": seeds, "steps": steps, "enough": enough, "loss_windows": windows,
            "losses_inside": losses_inside,
            "heldout_accuracy": {"epoch": last, "fp32": acc["fp32"], "bf16": acc["bf16"], "allowed": [lo, hi],
                                 "bf16_mean": acc_mean, "inside": accuracy_inside},
            "passed": passed, **cost(runs, passed)}


def cost(runs: dict[str, list[dict]], passed: bool) -> dict:
    """Does bf16 pay? Each run's pretraining minutes (its last probe), and bf16's median against fp32's.
    Medians: the runs follow one another, not step by step, and a run that shared the cores with
    other work is one outlier among three. bf16 counts as cheaper at CHEAPER of fp32's minutes or less;
    `auto` picks bf16 for a profile only where it passed and is cheaper."""
    minutes = {prec: [r["probes"][-1].get("pretrain_minutes") for r in rs] for prec, rs in runs.items()}
    if not all(m is not None for ms in minutes.values() for m in ms) or not all(minutes.values()):
        return {"pretrain_minutes": minutes, "bf16_time_ratio": None, "bf16_cheaper": False, "auto_bf16": False}
    ratio = statistics.median(minutes["bf16"]) / statistics.median(minutes["fp32"])
    return {"pretrain_minutes": minutes, "bf16_time_ratio": ratio, "bf16_cheaper": ratio <= CHEAPER,
            "auto_bf16": passed and ratio <= CHEAPER}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", required=True, help="a shipped profile's name or a JSON file")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variant", default="vanilla", choices=["vanilla", "synthesizer"])
    ap.add_argument("--max_epochs", type=int, default=None,
                    help="pretrain this many epochs instead of the profile's (its cosine shortened in proportion)")
    ap.add_argument("--probes", type=int, default=4, help="probes along the pretraining (default 4)")
    ap.add_argument("--out", default=None, help="the runs' folder (default runs/precision-profile-check-PROFILE)")
    ap.add_argument("--results", default="results/bench", help="where the verdict's JSON goes")
    args = ap.parse_args(argv)

    device = torch.device("cpu")
    prof = load_profile(args.profile)
    if args.max_epochs is not None:  # the cosine shortened in proportion, where the profile sets its end
        shorter: dict = {"max_epochs": args.max_epochs}
        final, epochs = prof.pretrain.final_tokens_per_pretrain_example, prof.pretrain.max_epochs
        if final and epochs:
            shorter["final_tokens_per_pretrain_example"] = round(final * args.max_epochs / epochs)
        prof = prof.with_settings(pretrain=shorter)
    corpus = load_corpus(bundled_path("wiki.txt"))
    max_epochs = stage_config(prof, "pretrain", corpus.n_docs).max_epochs
    every = max(1, max_epochs // max(1, args.probes))
    command = "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    runs: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    folder = Path(args.out or f"runs/precision-profile-check-{Path(prof.name).stem}")
    for seed in args.seeds:
        for prec in PRECISIONS:  # fp32 first: a stopped check has its baseline
            out, run_prof = folder / f"{prec}-s{seed}", prof.with_settings(common={"precision": prec})
            done = out / "curve.json"
            record = json.loads(done.read_text()) if done.is_file() else None
            # a run kept from before counts only if it trained exactly this (another profile, length or
            # variant in the same folder would be compared as if it were this one)
            if record is not None and not (same_training(record.get("profile", {}), run_prof)
                                           and record.get("variant") == args.variant and record.get("seed") == seed):
                raise InputError(done, "a run of other settings is here; use a new --out")
            if record is None or not record.get("pretrain_done"):
                print(f"{prec} seed {seed}: pretraining {max_epochs} epochs in {out}", file=sys.stderr, flush=True)
                record = run_curve(run_prof, corpus, out, variant=args.variant, seed=seed, every=every,
                                   extra=[max_epochs], device=device, resume=record is not None, quiet=True,
                                   command=command)
            runs[prec].append(record)
    result = {"command": command, "commit": git_commit(), "device": device_name(device),
              "cpu_kind": list(astuple(kind)) if (kind := cpu_kind()) else None, "torch": torch.__version__, "profile": prof.name,
              "variant": args.variant, "max_epochs": max_epochs,
              "criterion": f"at least {MIN_SEEDS} seeds and {MIN_STEPS} steps; at every probe bf16's mean "
                           "pretraining loss, and at the last its mean held-out accuracy, inside fp32's seed "
                           "range widened by that range",
              **verdict(runs)}
    path = Path(args.results) / f"precision-profile-{Path(prof.name).stem}-{device_slug(device)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result, indent=1) + "\n")
    acc = result["heldout_accuracy"]
    ratio = result["bf16_time_ratio"]
    print(f"{'passed' if result['passed'] else 'not passed'}: {result['seeds']} seeds, {result['steps']} steps; "
          f"losses inside at {sum(w['inside'] for w in result['loss_windows'])} of {len(result['loss_windows'])} "
          f"probes; held-out accuracy bf16 {acc['bf16_mean']:.1f}% against fp32 "
          f"{', '.join(f'{a:.1f}' for a in acc['fp32'])}; bf16 took "
          f"{'?' if ratio is None else f'{ratio:.2f}'} of fp32's minutes; --precision auto "
          f"{'may train it in bf16 here' if result['auto_bf16'] else 'keeps fp32 here'}; wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except InputError as e:  # one line, exit 2, as the command line does
        print(e, file=sys.stderr)
        raise SystemExit(2)
