"""`factgpt bench`: the plain reference path and the fast path, timed in one run.

Reference: the per-example dataset through a DataLoader, padded batches, fp32,
explicit attention and torch's dropout, one-question-at-a-time decoding that
recomputes the whole context per character. Fast: batched tensor corruption,
packed rows, the fused attention kernel, cheaper dropout, the precision `auto`
picks, and batched decoding with a key/value cache.

Model FLOPs per real (non-pad) token, for a model of N non-embedding
parameters, L layers, width d and an example of mean length ℓ:
    6·N + 6·L·d·ℓ
(forward + backward of every matrix product, 2 + 4 FLOPs per weight, plus
the causal attention scores and weighted sums, which see ℓ/2 keys on average:
2·2·L·d·ℓ/2 forward, twice that backward). Utilisation is measured against
the best fp32 (or bf16) matrix-product rate this device reaches in the same
run, not a datasheet number, so it says how much of the reachable speed the
training step uses.
"""

from __future__ import annotations

import json
import math
import platform
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from .batches import BatchedCorruption, DatasetSource, TensorExamples
from .datasets import CharCorruptionDataset, NameDataset, documents, parse_tsv
from .evaluate import predict, predict_reference
from .fileio import bundled_path, read_text, write_text_atomic
from .model import GPT, GPTConfig
from .pipeline import load_profile, stage_config
from .precision import matmul_precision, resolve, resolve_device
from .checkpoint import load_model
from .runinfo import device_name, git_commit
from .train import Trainer, TrainConfig
from .vocab import Vocab



def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Best FLOP/s of an n×n matrix product on this device (the utilisation denominator)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    for _ in range(reps + 1):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_token(model: GPT, mean_len: float) -> float:
    c = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if name not in ("tok_emb.weight", "pos_emb"))
    return 6 * n + 6 * c.n_layer * c.n_embd * mean_len


def time_training(model: GPT, source, cfg: TrainConfig, device: torch.device, steps: int, warmup: int = 2,
                  compile: bool = False) -> dict:
    tr = Trainer(model, source, cfg, device, compile=compile)
    it = _forever(source, cfg, tr.gen)
    for _ in range(warmup):
        tr.step(next(it))
    sync(device)
    real, allpos, examples = 0, 0, 0
    t0 = time.perf_counter()
    for _ in range(steps):
        b = next(it)
        tr.step(b)
        real += b.real_tokens()
        allpos += b.n_examples * cfg.tokens_per_example
        examples += b.n_examples
    tr.flush()
    sync(device)
    dt = time.perf_counter() - t0
    return {"steps": steps, "seconds": dt, "ms_per_step": 1000 * dt / steps, "real_tokens_per_s": real / dt,
            "all_positions_per_s": allpos / dt, "mean_example_len": real / examples, "precision": tr.precision,
            "final_loss": tr.progress.history[-1]["loss"]}


def _forever(source, cfg: TrainConfig, gen: torch.Generator):
    while True:
        yield from source.epoch(cfg.batch_size, gen, cfg.shuffle)


def run_bench(device_arg: str = "auto", steps: int = 200, finetune_steps: int = 20, eval_reference: int = 100,
              out: str | Path = "results/bench", precision: str = "auto", seed: int = 0,
              model_path: str | None = None, model_overrides: dict | None = None,
              command: str | None = None, compile: bool = False) -> dict:
    """Time both paths; model_overrides shrinks the model (tests only: the figures are for the course model).

    compile=True compiles the fast path's model (torch.compile; its compilation happens in
    the untimed warm-up steps) and writes <device>-compile.json beside the plain figures;
    a fast path in bf16 or tf32 writes <device>-<precision>.json, so precisions do not overwrite
    each other's figures.
    """
    device = resolve_device(device_arg)
    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    n_docs = len(documents(text))
    # The course's settings (configs/profiles/course.json), timed for a few steps and extrapolated.
    course = load_profile("course")
    block = course.model.block_size
    course_pre = stage_config(course, "pretrain", n_docs, seed=seed)
    course_ft = stage_config(course, "finetune_pretrained", n_docs, seed=seed)
    course_pre_steps = course_pre.max_epochs * math.ceil(n_docs / course_pre.batch_size)
    ft_ds = NameDataset(vocab, read_text(bundled_path("birth_places_train.tsv")))
    course_ft_steps = course_ft.max_epochs * math.ceil(len(ft_ds) / course_ft.batch_size)
    paths = {
        "reference": dict(pack=False, reference=True, precision="fp32"),
        "fast": dict(pack=None, reference=False, precision=precision),
    }
    peak = {"fp32": matmul_peak(device, torch.float32)}
    if resolve(precision, device, training=True) == "bf16":
        peak["bf16"] = matmul_peak(device, torch.bfloat16)
    if resolve(precision, device) == "tf32":
        with matmul_precision("tf32", device):
            peak["tf32"] = matmul_peak(device, torch.float32)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    res: dict = {"device": device_name(device), "torch": torch.__version__, "commit": git_commit(),
                 "command": command or "factgpt " + " ".join(sys.argv[1:]), "python": platform.python_version(),
                 "matmul_peak_flops": peak, "compile_fast_path": compile, "paths": {}}
    dev_rows = parse_tsv(read_text(bundled_path("birth_dev.tsv")), "birth_dev.tsv", True)
    questions = [r.question for r in dev_rows]
    for name, opts in paths.items():
        say(f"[{name}] pretraining steps of the course model ({steps} timed)")
        torch.manual_seed(seed)
        model = GPT(GPTConfig(len(vocab), **(model_overrides or {})))
        src = (DatasetSource(CharCorruptionDataset(text, block, vocab, seed=seed)) if name == "reference"
               else BatchedCorruption(text, vocab, block))
        fast_compile = compile and name == "fast"
        pre = time_training(model, src, replace(course_pre, **opts),
                            device, steps, warmup=5 if fast_compile else 2, compile=fast_compile)
        fpt = flops_per_token(model, pre["mean_example_len"] / 2 + 1)
        pre["flops_per_real_token"] = fpt
        pre["mfu"] = pre["real_tokens_per_s"] * fpt / peak.get(pre["precision"], peak["fp32"])
        pre["course_pretrain_s"] = pre["ms_per_step"] / 1000 * course_pre_steps
        pre["course_pretrain_label"] = (f"extrapolated from {steps} steps to {course_pre_steps}"
                                        if steps < course_pre_steps else "measured")
        say(f"[{name}] finetuning steps ({finetune_steps} timed)")
        torch.manual_seed(seed)
        fsrc = DatasetSource(ft_ds) if name == "reference" else TensorExamples(ft_ds)
        ft = time_training(GPT(GPTConfig(len(vocab), **(model_overrides or {}))), fsrc, replace(course_ft, **opts),
                           device, finetune_steps,
                           warmup=5 if fast_compile else 2, compile=fast_compile)
        ft["course_finetune_s"] = ft["ms_per_step"] / 1000 * course_ft_steps
        ft["course_finetune_label"] = (f"extrapolated from {finetune_steps} steps to {course_ft_steps}"
                                       if finetune_steps < course_ft_steps else "measured")
        say(f"[{name}] evaluating dev questions")
        if model_path:
            emodel, _ = load_model(model_path, vocab=vocab, device=device)
        else:
            emodel = model  # the briefly pretrained model: it rarely closes its answers, the slow case
        n_eval = len(questions) if name == "fast" else min(eval_reference, len(questions))
        sync(device)
        t0 = time.perf_counter()
        if name == "fast":
            predict(emodel, vocab, questions[:n_eval], precision=resolve(precision, device))
        else:
            predict_reference(emodel, vocab, questions[:n_eval])
        sync(device)
        ev = time.perf_counter() - t0
        res["paths"][name] = {
            "pretrain": pre, "finetune": ft,
            "evaluate": {"questions": n_eval, "seconds": ev, "dev_500_s": ev * len(questions) / n_eval,
                         "label": "measured" if n_eval == len(questions) else f"extrapolated from {n_eval} questions",
                         "model": model_path or "the benchmark's briefly pretrained model"},
        }
    r, f = res["paths"]["reference"], res["paths"]["fast"]
    res["ratios_fast_over_reference"] = {
        "pretrain_real_tokens_per_s": f["pretrain"]["real_tokens_per_s"] / r["pretrain"]["real_tokens_per_s"],
        "finetune_step_speed": r["finetune"]["ms_per_step"] / f["finetune"]["ms_per_step"],
        "evaluate_speed": r["evaluate"]["dev_500_s"] / f["evaluate"]["dev_500_s"],
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # One file per device and precision of the fast path (fp32 files carry no suffix).
    fast_precision = res["paths"]["fast"]["pretrain"]["precision"]
    slug = device_slug(device) + ("" if fast_precision == "fp32" else f"-{fast_precision}") + ("-compile" if compile else "")
    write_text_atomic(out / f"{slug}.json", json.dumps(res, indent=2) + "\n")
    write_text_atomic(out / f"{slug}.md", bench_table(res))
    print(bench_table(res))
    return res


def device_slug(device: torch.device) -> str:
    """A file-name form of the device: `cpu-amd-epyc`, `cpu-intel-xeon-processor-amx`, `cuda-nvidia-h200`.

    Marks such as (R) and the family/model detail are dropped; a CPU's bf16
    instructions stay, since they decide what precision pays there.
    """
    name = device_name(device).split(" CPU")[0] if device.type == "cpu" else device_name(device)
    bf16 = "amx" if "amx_bf16" in name else "avx512-bf16" if "avx512_bf16" in name else ""
    name = re.sub(r"\([^)]*\)", " ", name) + " " + bf16
    return f"{device.type}-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def bench_table(res: dict) -> str:
    r, f = res["paths"]["reference"], res["paths"]["fast"]
    q = res["ratios_fast_over_reference"]

    def row(label, a, b, ratio=""):
        return f"| {label} | {a} | {b} | {ratio} |"

    hm = lambda s: f"{s / 3600:.2f} h" if s >= 3600 else (f"{s / 60:.1f} min" if s >= 60 else f"{s:.1f} s")  # noqa: E731
    lines = [
        f"{res['device']} · torch {res['torch']} · commit `{res['commit'][:12]}` · `{res['command']}`",
        "",
        "| figure | reference | fast | fast / reference |",
        "|---|---|---|---|",
        row("precision", r["pretrain"]["precision"], f["pretrain"]["precision"]
            + (" · torch.compile" if res.get("compile_fast_path") else "")),
        row("pretraining ms/step (batch 128)", f"{r['pretrain']['ms_per_step']:.0f}", f"{f['pretrain']['ms_per_step']:.0f}",
            f"{r['pretrain']['ms_per_step'] / f['pretrain']['ms_per_step']:.2f}×"),
        row("pretraining real tokens/s", f"{r['pretrain']['real_tokens_per_s']:,.0f}",
            f"{f['pretrain']['real_tokens_per_s']:,.0f}", f"{q['pretrain_real_tokens_per_s']:.2f}×"),
        row("pretraining positions/s (127 per example)", f"{r['pretrain']['all_positions_per_s']:,.0f}",
            f"{f['pretrain']['all_positions_per_s']:,.0f}", ""),
        row("model FLOPs utilisation", f"{100 * r['pretrain']['mfu']:.1f}%", f"{100 * f['pretrain']['mfu']:.1f}%", ""),
        row("course pretraining (650 epochs)", hm(r["pretrain"]["course_pretrain_s"]),
            hm(f["pretrain"]["course_pretrain_s"]), f"({r['pretrain']['course_pretrain_label']})"),
        row("course finetuning (10 epochs)", hm(r["finetune"]["course_finetune_s"]),
            hm(f["finetune"]["course_finetune_s"]), f"{q['finetune_step_speed']:.2f}× ({r['finetune']['course_finetune_label']})"),
        row("evaluate 500 dev questions", hm(r["evaluate"]["dev_500_s"]), hm(f["evaluate"]["dev_500_s"]),
            f"{q['evaluate_speed']:.1f}× (reference {r['evaluate']['label']})"),
    ]
    return "\n".join(lines) + "\n"
