"""Span scoring of the shipped recite model: recite.best_spans against best_spans_reference.

Both pick, for each question, the run of 1-4 words of its recited line most likely after ⁇;
the fast one passes the prompt once into a key/value cache, reads shorter candidates off
longer ones and skips the candidates that cannot win (prune). Times the fast one with and
without pruning and the reference, on the same recitations of the first dev questions, and
checks that all three choose the same spans. Then a whole answer's decoding: recite() followed by
best_spans() against recite_and_spans(), which reads the prompts out of the recitation's cache.
Writes results/bench/span-scoring.json.

    python bench/span_scoring.py --questions 64
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from factgpt.checkpoint import load_model
from factgpt.fileio import bundled_path, shipped_model, write_text_atomic
from factgpt.pipeline import load_corpus
from factgpt.recite import best_spans, best_spans_reference, recite, recite_and_spans
from factgpt.runinfo import device_name, git_commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--out", default="results/bench/span-scoring.json")
    a = ap.parse_args()
    corpus = load_corpus(bundled_path("wiki.txt"))
    model, meta = load_model(shipped_model("recite"), vocab=corpus.vocab)
    lines = bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()[: a.questions]
    qs = [line.split("\t")[0] for line in lines]
    recs = [r.line.text for r in recite(model, corpus.vocab, qs, int(meta["max_chars"]))]
    best_spans(model, corpus.vocab, qs[:4], recs[:4])  # warm-up
    t0 = time.perf_counter()
    unpruned_rows: dict[str, int] = {}
    unpruned = best_spans(model, corpus.vocab, qs, recs, prune=False, stats=unpruned_rows)
    t_unpruned = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows: dict[str, int] = {}
    fast = best_spans(model, corpus.vocab, qs, recs, stats=rows)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = best_spans_reference(model, corpus.vocab, qs, recs)
    t_ref = time.perf_counter() - t0
    same = sum((f is None and r is None) or (f is not None and r is not None and f[0] == r[0])
               for f, r in zip(fast, ref))
    diff = max((abs(f[1] - r[1]) for f, r in zip(fast, ref) if f and r), default=0.0)
    max_chars = int(meta["max_chars"])
    t0 = time.perf_counter()
    apart = best_spans(model, corpus.vocab, qs, [r.line.text for r in recite(model, corpus.vocab, qs, max_chars,
                                                                                  answers=False)])
    t_apart = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, together = recite_and_spans(model, corpus.vocab, qs, max_chars, answers=False)
    t_together = time.perf_counter() - t0
    same_together = sum((a is None and b is None) or (a is not None and b is not None and a[0] == b[0])
                        for a, b in zip(apart, together))
    same_unpruned = sum((f is None and u is None) or (f is not None and u is not None and f[0] == u[0])
                        for f, u in zip(fast, unpruned))
    record = {"questions": len(qs), "fast_seconds": t_fast, "reference_seconds": t_ref,
              "speedup": t_ref / t_fast, "same_span": same, "max_log_prob_difference": diff,
              "unpruned_seconds": t_unpruned, "same_span_as_unpruned": same_unpruned,
              "carrier_rows_run": rows["rows"], "carrier_rows_pruned": rows["pruned"],
              "carrier_rows_unpruned": unpruned_rows["rows"],
              "recite_then_best_spans_seconds": t_apart, "recite_and_spans_seconds": t_together,
              "same_span_recite_and_spans": same_together,
              "device": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "commit": git_commit(),
              "command": f"python bench/span_scoring.py --questions {a.questions}"}
    write_text_atomic(a.out, json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
