"""How long does one seed of a profile's study take in each precision? Timed steps, extrapolated.

A seed of `factgpt reproduce` is finetuning without pretraining and, per
attention variant, a pretraining and a finetuning; the London row and the
greedy evaluation take seconds. A stage's batches have a fixed size and
length, so its steps cost the same from first to last, and a stage's time
is its step count times one step's time. Running a profile for hours in
fp32 only to learn that it takes hours is what this avoids.

The precisions take turns step by step (same seed, same batches), so that
the machine's drift, tens of percent from minute to minute, falls on both
alike; a stage's figure is its median step. Where a full run of the profile
was timed, set its log's minutes beside this estimate (--measured) to see
how far the extrapolation is off.

    python bench/seed_time.py --profile course_keyed --steps 12
    python bench/seed_time.py --profile wordkeys_small_e70 --precisions fp32    # a CPU without bf16 hardware

Writes results/bench/seed-time-<profile>-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from factgpt.benchmark import device_slug
from factgpt.fileio import bundled_path, run_folder, write_text_atomic
from factgpt.model import GPT, VARIANTS
from factgpt.pipeline import (evaluate_rows, finetune_source, load_corpus, load_profile, load_qa, model_config,
                              pretrain_source, stage_config)
from factgpt.precision import cpu_has_native_bf16, resolve_device
from factgpt.runinfo import device_name, git_commit
from factgpt.train import Trainer


def stages(variants: list[str]) -> list[tuple[str, str, str]]:
    """(name, stage, variant) in the order `factgpt reproduce` runs a seed."""
    out = [("finetune (no pretraining)", "finetune_scratch", "vanilla")]
    for v in variants:
        out += [(f"pretrain {v}", "pretrain", v), (f"finetune {v}", "finetune_pretrained", v)]
    return out


def make_trainer(prof, corpus, stage: str, variant: str, precision: str, device, seed: int) -> Trainer:
    mcfg = model_config(prof, corpus.vocab, variant)
    cfg = stage_config(prof, stage, corpus.n_docs, seed=seed, precision=precision)
    torch.manual_seed(seed)
    if stage == "pretrain":
        src = pretrain_source(corpus, mcfg.block_size, seed, prof.data)
    else:
        src = finetune_source(corpus, bundled_path("birth_places_train.tsv"), mcfg.block_size)
    return Trainer(GPT(mcfg), src, cfg, device)


def endless(tr: Trainer):
    while True:
        yield from tr.source.epoch(tr.cfg.batch_size, tr.gen)


def time_stage(trainers: dict[str, Trainer], steps: int, warmup: int = 2) -> dict[str, list[float]]:
    """Milliseconds of each timed step per precision, the precisions taking turns (the order flips each round)."""
    streams = {p: endless(tr) for p, tr in trainers.items()}
    # each trainer draws torch's random numbers (dropout) from its own saved stream
    rng = {p: torch.get_rng_state() for p in trainers}
    ms: dict[str, list[float]] = {p: [] for p in trainers}
    order = list(trainers)
    for s in range(warmup + steps):
        for p in (order if s % 2 == 0 else order[::-1]):
            batch = next(streams[p])
            torch.set_rng_state(rng[p])
            t0 = time.perf_counter()
            trainers[p].step(batch)
            dt = 1000 * (time.perf_counter() - t0)
            rng[p] = torch.get_rng_state()
            if s >= warmup:
                ms[p].append(dt)
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="wordkeys_small_e70")
    ap.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"],
                    help="default: fp32, and bf16 where the CPU has bf16 instructions")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=12, help="timed steps per stage and precision")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--measured", type=float, help="minutes a seed took in a full run (its log), for comparison")
    ap.add_argument("--measured_precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--measured_source", default="", help="where --measured comes from (a log's path)")
    ap.add_argument("--out", default=None, help="folder for the JSON (default: a new runs/bench-DATE-TIME; results/bench for the committed ones)")
    a = ap.parse_args()
    a.out = run_folder(a.out, "bench")
    if a.steps < 1:
        ap.error("--steps must be at least 1")  # one line, exit code 2
    device = resolve_device(a.device)
    precisions = a.precisions or (["fp32", "bf16"] if device.type == "cpu" and cpu_has_native_bf16() else ["fp32"])
    prof = load_profile(a.profile)
    corpus = load_corpus(bundled_path("wiki.txt"))

    rows = {}
    for name, stage, variant in stages(a.variants):
        trainers = {p: make_trainer(prof, corpus, stage, variant, p, device, a.seed) for p in precisions}
        total = next(iter(trainers.values())).total_steps
        ms = time_stage(trainers, a.steps)
        med = {p: statistics.median(v) for p, v in ms.items()}
        rows[name] = {"stage": stage, "variant": variant, "total_steps": total,
                      "batch_size": trainers[precisions[0]].cfg.batch_size,
                      "ms_per_step": med, "ms_all": ms,
                      "minutes": {p: med[p] * total / 60000 for p in precisions}}
        print(f"{name}: {total} steps; " + ", ".join(f"{p} {med[p]:.0f} ms a step, {rows[name]['minutes'][p]:.1f} min"
                                                   for p in precisions), flush=True)
        del trainers

    # evaluation: greedy decoding of dev and test, always in fp32 as reproduce decodes
    mcfg = model_config(prof, corpus.vocab, "vanilla")
    qa = [load_qa(bundled_path(f), corpus.vocab, False, mcfg.block_size)
          for f in ("birth_dev.tsv", "birth_test_inputs.tsv")]
    model = GPT(mcfg).to(device)
    t0 = time.perf_counter()
    for rows_ in qa:
        evaluate_rows(model, corpus.vocab, rows_)
    eval_min = (time.perf_counter() - t0) / 60  # one evaluation; a seed evaluates three models
    n_eval = 1 + len(a.variants)

    seed_min = {p: sum(r["minutes"][p] for r in rows.values()) + n_eval * eval_min for p in precisions}
    for p in precisions:
        print(f"one seed in {p}: {seed_min[p]:.1f} min", flush=True)
    out = {
        "what": "minutes one seed of `factgpt reproduce` takes, per precision: each stage's median step "
                "(precisions alternating) times its step count, plus the evaluations",
        "profile": prof.name,
        "profile_settings": prof.to_dict(),
        "device": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "command": "python " + " ".join(sys.argv),
        "commit": git_commit(),
        "seed": a.seed,
        "steps": a.steps,
        "precisions": precisions,
        "stages": rows,
        "evaluate_minutes_each": eval_min,
        "evaluations_a_seed": n_eval,
        "seed_minutes": seed_min,
    }
    if len(precisions) == 2:
        out["fp32_over_bf16"] = seed_min["fp32"] / seed_min["bf16"]
    if a.measured is not None:
        out["measured"] = {"minutes": a.measured, "precision": a.measured_precision, "source": a.measured_source}
        if a.measured_precision in seed_min:
            out["measured"]["estimate_over_measured"] = seed_min[a.measured_precision] / a.measured
    path = a.out / f"seed-time-{prof.name}-{device_slug(device)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
