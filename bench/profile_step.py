"""Where does one fast training step of the course model spend its time? A torch.profiler summary.

Times --steps steps of the fast path (course model, batch 128, lr 6e-3) without
the profiler, then profiles --profiled steps and writes, under --out:
  profile-<device>-<precision>[-compile].txt   the operator table (self time, top 30)
  profile-<device>-<precision>[-compile].json  ms/step, and on CUDA the kernels' busy
      time per step: far below the step's wall time means the GPU waits for the host
      (kernel launches, Python), not for arithmetic.

    python bench/profile_step.py --device cuda --precision tf32
    python bench/profile_step.py --device cpu --steps 10 --profiled 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from factgpt.datasets import documents
from factgpt.batches import BatchedCorruption
from factgpt.benchmark import device_slug, sync
from factgpt.fileio import bundled_path, read_text, run_folder, write_text_atomic
from factgpt.model import GPT, GPTConfig
from factgpt.precision import PRECISIONS, resolve_device
from factgpt.runinfo import device_name, git_commit
from factgpt.train import TrainConfig, Trainer
from factgpt.vocab import Vocab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=PRECISIONS)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=50, help="timed steps without the profiler")
    ap.add_argument("--profiled", type=int, default=5, help="steps under the profiler")
    ap.add_argument("--out", default=None, help="folder for the JSON (default: a new runs/bench-DATE-TIME; results/bench for the committed ones)")
    a = ap.parse_args()
    device = resolve_device(a.device)
    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    n_docs = len(documents(text))
    torch.manual_seed(0)
    cfg = TrainConfig(max_epochs=10**6, batch_size=128, learning_rate=6e-3, warmup_tokens=10240,
                      final_tokens=200 * n_docs * 128, precision=a.precision)
    tr = Trainer(GPT(GPTConfig(len(vocab))), BatchedCorruption(text, vocab, 128), cfg, device, compile=a.compile)
    batches = _forever(tr)
    for _ in range(5 if a.compile else 2):  # warm-up (and compilation)
        tr.step(next(batches))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        tr.step(next(batches))
    tr.flush()
    sync(device)
    ms_per_step = 1000 * (time.perf_counter() - t0) / a.steps

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(a.profiled):
            tr.step(next(batches))
        tr.flush()
        sync(device)
    ev = prof.key_averages()
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = ev.table(sort_by=sort, row_limit=30)
    res = {"command": "python " + " ".join(sys.argv), "device": device_name(device), "torch": torch.__version__,
           "commit": git_commit(), "precision": tr.precision, "compile": a.compile, "ms_per_step": ms_per_step,
           "timed_steps": a.steps, "profiled_steps": a.profiled}
    if device.type == "cuda":
        # kernels only: an operator's own row repeats the time of the kernels it launched
        kernels = [e for e in ev if e.device_type == torch.autograd.DeviceType.CUDA]
        res["gpu_busy_ms_per_step"] = sum(getattr(e, "self_device_time_total", 0) or 0 for e in kernels) / 1000 / a.profiled
        res["kernels_per_step"] = sum(e.count for e in kernels) / a.profiled
    top = sorted(ev, key=lambda e: e.self_cpu_time_total if device.type == "cpu"
                 else (getattr(e, "self_device_time_total", 0) or 0), reverse=True)[:12]
    res["top_ops"] = [{"name": e.key, "calls_per_step": e.count / a.profiled,
                       "self_cpu_ms_per_step": e.self_cpu_time_total / 1000 / a.profiled,
                       **({"self_gpu_ms_per_step": (getattr(e, "self_device_time_total", 0) or 0) / 1000 / a.profiled}
                          if device.type == "cuda" else {})} for e in top]
    out = run_folder(a.out, "bench")
    out.mkdir(parents=True, exist_ok=True)
    name = f"profile-{device_slug(device)}-{tr.precision}" + ("-compile" if a.compile else "")
    write_text_atomic(out / f"{name}.txt", f"{res['command']}\n{ms_per_step:.1f} ms/step without the profiler\n\n{table}\n")
    write_text_atomic(out / f"{name}.json", json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "top_ops"}, indent=1))
    print(table)


def _forever(tr: Trainer):
    while True:
        yield from tr.source.epoch(tr.cfg.batch_size, tr.gen)


if __name__ == "__main__":
    main()
