"""Load on `factgpt serve`, on loopback only: questions a second, latency, 503s, memory, and answers
checked against `factgpt ask --json` for the same questions.

1. warm: one question at a time, WARM_REQUESTS times (the latency of a single user);
2. load: the 500 dev questions and 500 made-up names, one question a request, from --clients
   concurrent clients, --rounds times (questions a second: the median round; latencies: all);
3. burst: --burst requests at once, past the server's queue bound, which should be answered 503
   at once rather than queued.
The server's resident memory is read before the load (after the single questions) and after it (after
one more single question), and right after the load's last batch.

    python bench/serve_load.py                    # writes results/serve/load.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402

from factgpt.abstention import made_up_questions  # noqa: E402
from factgpt.fileio import bundled_path, write_text_atomic  # noqa: E402
from factgpt.runinfo import device_name, git_commit  # noqa: E402
from factgpt.serve import QUEUE_BOUND  # noqa: E402

WARM_REQUESTS = 30


def post(url: str, question: str, timeout: float = 120) -> tuple[int, dict, float]:
    body = json.dumps({"questions": [question]}).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read()), time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), time.perf_counter() - t0


def rss_mb(pid: int, kind: str = "VmRSS") -> float:
    """The process's resident memory in MB: all of it (VmRSS), or its anonymous part (RssAnon: what it
    allocated) or its file-backed part (RssFile: library code and data read in from disk, shared)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(kind + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(pid: int) -> dict[str, float]:
    return {k: rss_mb(pid, k) for k in ("VmRSS", "RssAnon", "RssFile")}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def test_questions(n: int) -> list[str]:
    """Warm-up questions from the test inputs (not the load's)."""
    lines = bundled_path("birth_test_inputs.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--made_up", type=int, default=500)
    ap.add_argument("--burst", type=int, default=2 * QUEUE_BOUND)
    ap.add_argument("--rounds", type=int, default=3, help="times the load is run (its questions a second: the median)")
    ap.add_argument("--out", default="results/serve/load.json")
    args = ap.parse_args()
    from test_serve import free_port, start_server

    dev = [line.split("\t")[0] for line in bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()]
    made_up = made_up_questions(args.made_up, seed=12345)
    questions = dev + made_up
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/ask"
    proc = start_server(port, threads=None)  # as a user starts it: torch's own thread count
    try:
        with ThreadPoolExecutor(args.clients) as pool:  # warm-up: batches as large as the load's
            list(pool.map(lambda q: post(url, q), test_questions(args.clients * 4)))
        def info() -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=10) as r:
                return json.loads(r.read())

        server_threads = info()["torch_threads"]
        warm = [post(url, dev[i % len(dev)])[2] for i in range(WARM_REQUESTS)]
        # Memory is read with the server in the same state before and after the load: just after a
        # lone question. Right after a batch its allocator holds a few tens of MB more or less,
        # depending on that batch (runs of this benchmark differed by up to a tenth there).
        mem_before = rss_mb(proc.pid)
        parts_before = memory(proc.pid)

        got: list[dict[str, dict]] = []  # each round's answers
        lat, codes, lock = [], {}, threading.Lock()
        rounds: list[dict] = []

        def one(q: str) -> None:
            code, body, s = post(url, q)
            with lock:
                lat.append(s)
                codes[code] = codes.get(code, 0) + 1
                if code == 200:
                    got[-1][q] = body["answers"][0]

        # The load, --rounds times over: this machine's speed drifts by 10-20% within minutes, so
        # one round's questions a second says less than the median of several.
        before = info()
        for _ in range(args.rounds):
            got.append({})
            n_lat = len(lat)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(one, questions))
            wall = time.perf_counter() - t0
            mine = lat[n_lat:]
            rounds.append({"seconds": wall, "questions_per_second": len(questions) / wall,
                           "p50_ms": 1000 * statistics.median(mine), "p99_ms": 1000 * pct(mine, 0.99)})
        mem_right_after = rss_mb(proc.pid)
        after = info()
        post(url, dev[0])
        mem_after = rss_mb(proc.pid)
        parts_after = memory(proc.pid)
        batches = after["batches_decoded"] - before["batches_decoded"]
        per_batch = (after["questions_decoded"] - before["questions_decoded"]) / max(1, batches)

        burst_codes: dict[int, int] = {}
        burst_lat: list[float] = []

        def hit(q: str) -> None:
            code, _, s = post(url, q)
            with lock:
                burst_codes[code] = burst_codes.get(code, 0) + 1
                if code == 503:
                    burst_lat.append(s)

        with ThreadPoolExecutor(args.burst) as pool:
            list(pool.map(hit, [dev[i % len(dev)] for i in range(args.burst)]))
        mem_end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)

    # the same questions through `factgpt ask --json`, one process reading them all from stdin
    ask = subprocess.run([sys.executable, "-m", "factgpt", "ask", "--json"], input="\n".join(questions) + "\n",
                         capture_output=True, text=True, cwd=ROOT)
    expected = {json.loads(line)["asked"]: json.loads(line) for line in ask.stdout.splitlines()}
    served = [(q, g[q]) for g in got for q in questions if q in g]  # every round's answers
    differ = [(q, a) for q, a in served if a != expected.get(q)]
    # what an answer is: everything but the float scores, which differ in the last digits with the batch a
    # question was decoded in (batch shapes change the order of float sums)
    words = lambda d: {k: v for k, v in d.items() if not isinstance(v, (float, list))}  # noqa: E731
    answers_differ = [q for q, a in served if words(a) != words(expected.get(q, {}))]
    float_diff = max((abs(a[k] - expected[q][k]) for q, a in differ for k in a
                      if isinstance(a[k], float) and isinstance(expected[q].get(k), float)), default=0.0)
    record = {
        "what": "factgpt serve under load on loopback: one question a request",
        "command": "python bench/serve_load.py " + " ".join(sys.argv[1:]),
        "device": device_name(torch.device("cpu")), "torch": torch.__version__, "threads": os.cpu_count(),
        "server_torch_threads": server_threads, "commit": git_commit(),
        "warm_single": {"requests": WARM_REQUESTS, "p50_ms": 1000 * statistics.median(warm),
                        "p99_ms": 1000 * pct(warm, 0.99)},
        "load": {"clients": args.clients, "questions": len(questions), "dev": len(dev), "made_up": len(made_up),
                 "rounds": args.rounds, "per_round": rounds,
                 "seconds": sum(r["seconds"] for r in rounds),
                 "questions_per_second": statistics.median(r["questions_per_second"] for r in rounds),
                 "questions_per_second_is": "the median of the rounds'",
                 "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * pct(lat, 0.99),
                 "status": {str(k): v for k, v in sorted(codes.items())},
                 "errors": sum(v for k, v in codes.items() if k != 200),
                 "batches": batches, "questions_per_batch": per_batch},
        "burst": {"requests": args.burst, "queue_bound": QUEUE_BOUND,
                  "status": {str(k): v for k, v in sorted(burst_codes.items())},
                  "p99_ms_of_503": 1000 * pct(burst_lat, 0.99) if burst_lat else None},
        "memory_mb": {"before_load": mem_before, "after_load": mem_after, "after_burst": mem_end,
                      "change_after_load": (mem_after - mem_before) / mem_before,
                      "parts_before_load": parts_before, "parts_after_load": parts_after,
                      "right_after_load": mem_right_after,
                      "change_right_after_load": (mem_right_after - mem_before) / mem_before,
                      "read": "before and after the load, each just after a lone question; right_after_load: "
                              "just after the load's last batch"},
        "answers_checked_against_ask_json": len(served),
        "objects_that_differ": len(differ), "max_score_difference": float_diff,
        "answers_that_differ": len(answers_differ), "answer_differ_examples": answers_differ[:5],
    }
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: record[k] for k in ("warm_single", "load", "burst", "memory_mb", "objects_that_differ", "max_score_difference", "answers_that_differ")},
                     indent=1))


if __name__ == "__main__":
    main()
