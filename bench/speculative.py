"""Questions with and without speculative decoding (factgpt/speculative.py), in one run.

Lone questions: --questions dev questions and as many made-up names, one at a time, with the
shipped recite model and no abstention rule (every line recited to its end), the way
grounded.answer_questions decodes them with the corpus as the drafter and without guesses,
alternating the two question by question so that both see the same machine. Batches: --batches
batches like the load of bench/serve_load.py (16 dev questions and 15 made-up names each),
answered as `serve` answers them (the Asker, with the model's rule: a line refused for want of a
line stops where its refusal is certain) with and without guesses, alternating batch by batch.
Reports the median milliseconds of each kind, the passes a recitation took against its
characters, and whether every answer and recitation is the same.

    python bench/speculative.py --out results/bench
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from factgpt.abstention import made_up_questions
from factgpt.ask import Asker, check_question
from factgpt.checkpoint import load_model
from factgpt.fileio import bundled_path, run_folder, shipped_model, write_text_atomic
from factgpt.grounded import answer_questions
from factgpt.pipeline import load_corpus
from factgpt.runinfo import device_name, git_commit
import factgpt.recite as recite
from factgpt.speculative import Drafter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=100, help="dev questions, and as many made-up names")
    ap.add_argument("--batches", type=int, default=10, help="batches of 16 dev questions and 15 made-up names")
    ap.add_argument("--out", default=None, help="folder for speculative.json (default: a new runs/bench-DATE-TIME)")
    a = ap.parse_args()
    commit = git_commit()
    corpus = load_corpus(bundled_path("wiki.txt"))
    model, meta = load_model(shipped_model("recite"), vocab=corpus.vocab)
    max_chars = int(meta["max_chars"])
    t0 = time.perf_counter()
    drafter = Drafter(corpus.text, corpus.vocab)
    build_s = time.perf_counter() - t0
    lines = bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()[: a.questions]
    kinds = {"dev": [line.split("\t")[0] for line in lines], "made_up": made_up_questions(a.questions, seed=4242)}

    passes = {"passes": 0}  # the decodings with guesses add their passes here
    decode = recite.decode_into_cache

    def counted(*args, **kw):
        if kw.get("guesser") is not None:
            kw["stats"] = passes
        return decode(*args, **kw)

    def answer(q: str, guesses: bool):
        return answer_questions(model, corpus.vocab, [q], max_chars, None, True, free_answers=False,
                                drafter=drafter if guesses else None)[0]

    recite.decode_into_cache = counted  # the recitations' decoding, counting its passes
    for q in kinds["dev"][:3]:  # warm-up, not counted
        answer(q, True), answer(q, False)
    record_kinds, same, chars = {}, 0, {}
    for kind, qs in kinds.items():
        ms = {True: [], False: []}
        passes["passes"], chars[kind] = 0, 0
        for i, q in enumerate(qs):
            got = {}
            for guesses in ((True, False) if i % 2 == 0 else (False, True)):
                t = time.perf_counter()
                got[guesses] = answer(q, guesses)
                ms[guesses].append(1000 * (time.perf_counter() - t))
            same += (got[True].guess, got[True].recitation) == (got[False].guess, got[False].recitation)
            chars[kind] += len(got[False].recitation) + 1  # the recited characters and the ⁇ (or cut) step
        record_kinds[kind] = {"questions": len(qs), "speculative_ms": statistics.median(ms[True]),
                              "plain_ms": statistics.median(ms[False]),
                              "speedup": statistics.median(ms[False]) / statistics.median(ms[True]),
                              "passes_per_question": passes["passes"] / len(qs),
                              "steps_per_question": chars[kind] / len(qs)}
    # Batches as the server decodes them under load.
    askers = {True: Asker(model, corpus.vocab, meta, drafter), False: Asker(model, corpus.vocab, meta)}
    dev_all = [line.split("\t")[0] for line in bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()]
    made_up = made_up_questions(15 * (a.batches + 1), seed=4243)
    batches = [[check_question(q, corpus.vocab, model.max_len, "question") for q in
                dev_all[16 * b : 16 * b + 16] + made_up[15 * b : 15 * b + 15]] for b in range(a.batches + 1)]
    askers[True].ask(batches[0]), askers[False].ask(batches[0])  # warm-up, not counted
    ms, batch_same, passes["passes"] = {True: [], False: []}, 0, 0
    for b, batch in enumerate(batches[1:]):
        got = {}
        for guesses in ((True, False) if b % 2 == 0 else (False, True)):
            t = time.perf_counter()
            got[guesses] = askers[guesses].ask(batch)
            ms[guesses].append(1000 * (time.perf_counter() - t))
        batch_same += sum((x.answer, x.recited_line) == (y.answer, y.recited_line) for x, y in zip(got[True], got[False]))
    record_kinds["batch"] = {"batches": a.batches, "questions_per_batch": 31, "speculative_ms": statistics.median(ms[True]),
                             "plain_ms": statistics.median(ms[False]),
                             "speedup": statistics.median(ms[False]) / statistics.median(ms[True]),
                             "passes_per_batch": passes["passes"] / a.batches}
    n = sum(len(q) for q in kinds.values()) + 31 * a.batches
    same += batch_same
    record = {
        "what": "lone questions answered with the shipped recite model, with guesses read off the corpus "
                "(speculative decoding) and without, alternating question by question, and batches of 16 dev "
                "questions and 15 made-up names answered as serve answers them, alternating batch by batch; "
                "median milliseconds",
        "command": "python bench/speculative.py " + " ".join(
            f"--{k} {v}" for k, v in vars(a).items() if v is not None and k != "out"),
        "device": device_name(torch.device("cpu")), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "commit": commit, "drafter_build_s": build_s, **record_kinds,
        "answers_compared": n, "answers_the_same": same,
    }
    out = run_folder(a.out, "bench")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "speculative.json", json.dumps(record, indent=1) + "\n")
    for kind, r in record_kinds.items():
        count = (f"{r['passes_per_question']:.1f} passes against {r['steps_per_question']:.1f} steps"
                 if kind != "batch" else f"{r['passes_per_batch']:.1f} passes a batch")
        print(f"{kind}: {r['speculative_ms']:.0f} ms with guesses, {r['plain_ms']:.0f} ms without ({count})")
    print(f"same answers and recitations {same}/{n}; wrote {out / 'speculative.json'}")


if __name__ == "__main__":
    main()
