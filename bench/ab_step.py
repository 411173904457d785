"""What does one piece of the CPU fast path buy? Two variants of a training step, steps alternating.

The speed of a shared machine drifts by tens of percent from minute to minute,
so timing one variant after the other measures the drift as much as the
change. Here the two variants take turns, one course-model step each (same
seed, same batches), and the figure is the median of the per-step ratios.

  --what attention   _DropoutAttention against the explicit attention path (same
                     dropout masks; everything else the fast path), in one process
  --what chunks      _DropoutAttention with its queries in 3 slices against 1 slice
                     (attention.QUERY_CHUNKS), in one process
  --what allocator   the fast path with and without keep_freed_memory (a process-wide
                     setting, so each variant runs in its own process)

    python bench/ab_step.py --what attention --steps 16
    python bench/ab_step.py --what chunks --steps 16
    python bench/ab_step.py --what allocator --steps 16

Writes results/bench/ab-<what>-<device>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from factgpt.batches import BatchedCorruption
from factgpt.benchmark import device_slug
from factgpt.fileio import bundled_path, read_text, run_folder, write_text_atomic
from factgpt.model import GPT, GPTConfig
from factgpt.runinfo import device_name, git_commit
from factgpt.train import TrainConfig, Trainer
from factgpt.vocab import Vocab

VARIANTS = {
    "attention": ("_DropoutAttention", "explicit attention"),
    "chunks": ("3 query slices", "1 query slice"),
    "allocator": ("keep_freed_memory", "glibc defaults"),
}


def make_trainer(explicit_attention: bool = False) -> tuple[Trainer, object]:
    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    torch.manual_seed(0)
    cfg = TrainConfig(max_epochs=10**6, batch_size=128, learning_rate=6e-3, warmup_tokens=10240, final_tokens=10**9)
    tr = Trainer(GPT(GPTConfig(len(vocab))), BatchedCorruption(text, vocab, 128), cfg, "cpu")
    if explicit_attention:
        # explicit attention (the forward reads config.reference); dropout stays the fast path's (same masks)
        tr.model.config = dataclasses.replace(tr.model.config, reference=True)

    def batches():
        gen = torch.Generator().manual_seed(0)
        while True:
            yield from tr.source.epoch(cfg.batch_size, gen, shuffle=True)

    return tr, batches()


def timed_step(tr: Trainer, batches) -> float:
    b = next(batches)
    t0 = time.perf_counter()
    tr.step(b)
    return 1000 * (time.perf_counter() - t0)


def child(keep: bool) -> None:
    """One variant of --what allocator: a step each time a line arrives on stdin."""
    if not keep:
        import factgpt.train

        factgpt.train.keep_freed_memory = lambda: False
    tr, batches = make_trainer()
    for _ in range(2):
        timed_step(tr, batches)
    print("ready", flush=True)
    for _ in sys.stdin:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        ms = timed_step(tr, batches)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        print(f"{ms:.3f} {tr.progress.history[-1]['loss']:.6f} {faults}", flush=True)


def alternate(step_a, step_b, steps: int) -> tuple[list[float], list[float]]:
    a, b = [], []
    for s in range(steps):
        for fn, out in ((step_a, a), (step_b, b)) if s % 2 == 0 else ((step_b, b), (step_a, a)):
            out.append(fn())
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=sorted(VARIANTS), required=True)
    ap.add_argument("--steps", type=int, default=16, help="timed steps of each variant")
    ap.add_argument("--out", default=None, help="folder for the JSON (default: a new runs/bench-DATE-TIME; results/bench for the committed ones)")
    ap.add_argument("--child", choices=["keep", "plain"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child == "keep")
        return
    losses, extra = {}, {}
    if a.what in ("attention", "chunks"):
        import factgpt.attention as attention

        (ta, ba), (tb, bb) = make_trainer(), make_trainer(explicit_attention=a.what == "attention")
        chunks = [attention.QUERY_CHUNKS, 1 if a.what == "chunks" else attention.QUERY_CHUNKS]
        # the two trainers share torch's random generator: give each its own stream of dropout masks
        states = [torch.get_rng_state(), torch.get_rng_state()]

        def run(i, tr, b):
            torch.set_rng_state(states[i])
            attention.QUERY_CHUNKS = chunks[i]
            ms = timed_step(tr, b)
            states[i] = torch.get_rng_state()
            return ms

        for _ in range(2):
            run(0, ta, ba), run(1, tb, bb)
        ms_a, ms_b = alternate(lambda: run(0, ta, ba), lambda: run(1, tb, bb), a.steps)
        losses = {"a": ta.progress.history[-1]["loss"], "b": tb.progress.history[-1]["loss"]}
    else:
        procs = [subprocess.Popen([sys.executable, __file__, "--what", "allocator", "--child", c],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for c in ("keep", "plain")]
        try:
            for p in procs:
                if p.stdout.readline().strip() != "ready":
                    sys.exit("a variant failed to start")
            last, faults = {}, {0: [], 1: []}

            def ask(i):
                procs[i].stdin.write("step\n")
                procs[i].stdin.flush()
                ms, loss, n = procs[i].stdout.readline().split()
                last[i] = float(loss)
                faults[i].append(int(n))
                return float(ms)

            ms_a, ms_b = alternate(lambda: ask(0), lambda: ask(1), a.steps)
            losses = {"a": last[0], "b": last[1]}
            extra["page_faults_per_step"] = {"a": statistics.mean(faults[0]), "b": statistics.mean(faults[1])}
        finally:
            for p in procs:
                p.kill()
    ratios = [x / y for x, y in zip(ms_a, ms_b)]
    name_a, name_b = VARIANTS[a.what]
    res = {
        "command": "python " + " ".join(sys.argv), "device": device_name(torch.device("cpu")),
        "torch": torch.__version__, "commit": git_commit(), "seed": 0, "what": a.what,
        "a": name_a, "b": name_b, "steps_each": a.steps, "ms_a": ms_a, "ms_b": ms_b,
        "median_ms_a": statistics.median(ms_a), "median_ms_b": statistics.median(ms_b),
        "median_step_ratio_a_over_b": statistics.median(ratios),
        "last_loss": losses,  # same seed and batches: equal up to rounding
        **extra,
    }
    out = run_folder(a.out, "bench")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ab-{a.what}-{device_slug(torch.device('cpu'))}.json"
    write_text_atomic(path, json.dumps(res, indent=2) + "\n")
    print(f"{name_a}: {res['median_ms_a']:.0f} ms a step, {name_b}: {res['median_ms_b']:.0f} ms; "
          f"median per-step ratio {res['median_step_ratio_a_over_b']:.3f} -> {path}")


if __name__ == "__main__":
    main()
