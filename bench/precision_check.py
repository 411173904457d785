"""Do bf16 autocast or tf32 train the course model like fp32? Loss curves, several seeds.

Course pretraining settings (lr 6e-3, batch 128, the course schedule) for
--steps steps in fp32 and in each precision of --compare (bf16 autocast; tf32,
CUDA only: fp32 tensors, tensor-core products), from the same initialisations.
Besides the loss it records, every --every steps, what could make bf16
diverge: the gradient norm before clipping, the largest |logit|, and the
largest pre-softmax attention score of the last layer. Writes
<out>/precision-<device>.json with a verdict per precision: its loss curve
must stay within the fp32 seeds' spread (every 25-step window).

    python bench/precision_check.py --device cuda --steps 500 --seeds 0 1 --compare bf16 tf32
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from factgpt.datasets import documents
from factgpt.batches import BatchedCorruption
from factgpt.benchmark import device_slug
from factgpt.fileio import bundled_path, read_text, run_folder, write_text_atomic
from factgpt.model import GPT, GPTConfig
from factgpt.precision import resolve_device
from factgpt.runinfo import device_name, git_commit
from factgpt.train import Trainer, TrainConfig
from factgpt.vocab import Vocab


def run(precision: str, seed: int, steps: int, every: int, device: torch.device) -> dict:
    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    n_docs = len(documents(text))
    torch.manual_seed(seed)
    model = GPT(GPTConfig(len(vocab)))
    cfg = TrainConfig(max_epochs=10**6, batch_size=128, learning_rate=6e-3, warmup_tokens=10240,
                      final_tokens=200 * n_docs * 128, seed=seed, precision=precision)
    tr = Trainer(model, BatchedCorruption(text, vocab, 128), cfg, device)
    probes, it = [], _forever(tr)
    last_scores: list[float] = []
    attn = tr.model.blocks[-1].attn
    hook = attn.query.register_forward_hook(lambda m, i, o: last_scores.append(float(o.detach().abs().max())))
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        batch = next(it)
        tr.step(batch)
        if step % every == 0:
            grads = [p.grad.detach().float().norm() for p in tr.model.parameters() if p.grad is not None]
            with torch.no_grad():
                b = batch.to(device)
                logits, _ = tr.model(b.x[:16])
            probes.append({"step": step, "grad_norm": float(torch.stack(grads).norm()),
                           "max_abs_logit": float(logits.abs().max()),
                           "max_abs_query_last_layer": last_scores[-1] if last_scores else None})
    hook.remove()
    tr.flush()
    return {"precision": tr.precision, "seed": seed, "seconds": time.perf_counter() - t0, "losses": [h["loss"] for h in tr.progress.history],
            "probes": probes}


def _forever(tr: Trainer):
    while True:
        yield from tr.source.epoch(tr.cfg.batch_size, tr.gen)


def window_means(v: list[float], k: int = 25) -> list[float]:
    k = min(k, len(v))  # a very short run (a smoke test) is one window
    return [statistics.fmean(v[i : i + k]) for i in range(0, len(v) - k + 1, k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default=None, help="folder for the JSON (default: a new runs/bench-DATE-TIME; results/bench for the committed ones)")
    ap.add_argument("--compare", nargs="+", default=["bf16"], choices=["bf16", "tf32"])
    a = ap.parse_args()
    a.out = run_folder(a.out, "bench")
    device = resolve_device(a.device)
    precisions = ["fp32", *a.compare]
    runs = [run(p, s, a.steps, a.every, device) for s in a.seeds for p in precisions]
    fp = [window_means(r["losses"]) for r in runs if r["precision"] == "fp32"]
    verdict, windows = {}, {}
    for cand in a.compare:
        other = [window_means(r["losses"]) for r in runs if r["precision"] == cand]
        inside = []
        for w in range(len(fp[0])):
            lo, hi = min(c[w] for c in fp), max(c[w] for c in fp)
            spread = max(hi - lo, 0.02)
            inside.append(all(lo - spread <= c[w] <= hi + spread for c in other))
        verdict[cand], windows[cand] = all(inside), f"{sum(inside)}/{len(inside)}"
    res = {"command": "python " + " ".join(sys.argv), "device": device_name(device), "torch": torch.__version__,
           "commit": git_commit(), "steps": a.steps, "seeds": a.seeds,
           "within_fp32_spread": verdict, "windows_inside": windows,
           "final_window_loss": {p: [window_means(r["losses"])[-1] for r in runs if r["precision"] == p]
                                 for p in precisions},
           "seconds": {p: sum(r["seconds"] for r in runs if r["precision"] == p) for p in precisions},
           "runs": runs}
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"precision-{device_slug(device)}.json"
    write_text_atomic(path, json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: res[k] for k in ("within_fp32_spread", "windows_inside", "final_window_loss", "seconds")},
                     indent=1))


if __name__ == "__main__":
    main()
