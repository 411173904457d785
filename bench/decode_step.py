"""The lean decoding step (factgpt/decode_step.py) against the module path, in one run.

Answers the first dev questions with the shipped recite model the way `ask` and `serve` do
(grounded.answer_questions: recite, then read the answer's span off the recitation), once with
greedy decoding's steps through the lean step and once through the model's modules, alternating
the two each round so that both see the same machine (this one drifts 10-20% within minutes).
Batches of 1 (a warm single question) and of --batch questions (what the server decodes
together under load). Checks that both paths give the same answers and recitations.

    python bench/decode_step.py --out results/bench
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import factgpt.evaluate as evaluate
from factgpt.checkpoint import load_model
from factgpt.fileio import bundled_path, run_folder, shipped_model, write_text_atomic
from factgpt.grounded import answer_questions
from factgpt.pipeline import load_corpus
from factgpt.runinfo import device_name, git_commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--out", default=None, help="folder for decode-step.json (default: a new runs/bench-DATE-TIME)")
    a = ap.parse_args()
    commit = git_commit()
    corpus = load_corpus(bundled_path("wiki.txt"))
    model, meta = load_model(shipped_model("recite"), vocab=corpus.vocab)
    max_chars = int(meta["max_chars"])
    lines = bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()[: a.batch]
    qs = [line.split("\t")[0] for line in lines]
    lean_supports = evaluate.supports
    paths = {"lean": lean_supports, "module": lambda model, precision: False}

    def answer(n: int):
        return answer_questions(model, corpus.vocab, qs[:n], max_chars, None, True, free_answers=False)

    got, ms = {}, {(p, n): [] for p in paths for n in (1, a.batch)}
    for rnd in range(a.rounds + 1):  # round 0 warms up and is not counted
        for name, supports in paths.items():
            evaluate.supports = supports
            for n in (1, a.batch):
                t0 = time.perf_counter()
                out = answer(n)
                if rnd:
                    ms[(name, n)].append(1000 * (time.perf_counter() - t0))
                got[name] = out if n == a.batch else got.get(name)
    evaluate.supports = lean_supports
    same = sum(x.guess == y.guess and x.recitation == y.recitation for x, y in zip(got["lean"], got["module"]))
    med = {f"{p}_batch{n}_ms": statistics.median(v) for (p, n), v in ms.items()}
    record = {
        "what": "answering dev questions with the shipped recite model: greedy steps through the lean step "
                "against the model's modules, alternating each round; median milliseconds of a batch",
        "command": "python bench/decode_step.py " + " ".join(
            f"--{k} {v}" for k, v in vars(a).items() if v is not None and k != "out"),
        "device": device_name(torch.device("cpu")), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "commit": commit, "rounds": a.rounds, "batch": a.batch, **med,
        "single_speedup": med["module_batch1_ms"] / med["lean_batch1_ms"],
        "batch_speedup": med[f"module_batch{a.batch}_ms"] / med[f"lean_batch{a.batch}_ms"],
        "answers_compared": len(qs), "answers_the_same": same, "every_round_ms": {f"{p}_batch{n}": v for (p, n), v in ms.items()},
    }
    out = run_folder(a.out, "bench")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "decode-step.json", json.dumps(record, indent=1) + "\n")
    print(f"single question: lean {med['lean_batch1_ms']:.0f} ms, modules {med['module_batch1_ms']:.0f} ms; "
          f"{a.batch} questions: lean {med[f'lean_batch{a.batch}_ms']:.0f} ms, modules "
          f"{med[f'module_batch{a.batch}_ms']:.0f} ms; same answers {same}/{len(qs)}; wrote {out / 'decode-step.json'}")


if __name__ == "__main__":
    main()
