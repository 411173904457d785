"""The frontier of the small-model search: held-out accuracy and line recall against fp32 CPU minutes.

Each candidate's curve gives accuracy at its probe epochs: rounds 1-2 (results/search-small/round*/,
`factgpt curve` on a GPU in fp32) and round 3 (results/search-focused/cpu/, lines without dates,
`factgpt curve` on 2 CPU cores in fp32) and round 4 (results/search-batch/cpu/, batches of 8-16
lines, `factgpt curve` on 2 CPU cores in fp32) and round 5 (results/search-keys/cpu/, small models with a
word-key table, `factgpt curve` on 2 CPU cores in fp32); held-out slice only. Its pretraining step, timed in fp32 on
2 CPU cores by bench/seed_time.py (each search's cpu-step-time/), turns an epoch into CPU minutes:
minutes = epoch × steps an epoch × ms a step. The course model's row is the laptop profile's own
curve (results/course_keyed/curve/laptop300/, bf16 on an AMX Xeon) timed the same way in fp32.

    python bench/frontier.py            # writes results/search-small/frontier.{json,png}
"""

from __future__ import annotations

import argparse
import glob
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def size_of(settings: dict) -> str:
    m = settings["model"]
    return f"{m['n_layer']} layers, {m['n_head']} heads, {m['n_embd']}-d"


def params_of(settings: dict, vocab: int = 256) -> int:
    """Weights of the GPT (embeddings, blocks, head), to the nearest thousand: for the legend."""
    m = settings["model"]
    d, L, T = m["n_embd"], m["n_layer"], m["block_size"]
    return (vocab + T) * d + L * 12 * d * d + d * vocab + m.get("word_keys", 0) * d  # the table: one lookup a row


def key_of(s: dict) -> tuple:
    """What a pretraining step's time depends on: the model's size, its word-key table and the lines' length."""
    return (s["model"]["n_layer"], s["model"]["n_head"], s["model"]["n_embd"], s["data"]["max_chars"],
            bool(s["data"].get("drop_dates")), bool(s["model"].get("word_keys")))


def step_ms(timing_dirs: list[Path]) -> dict[tuple, list[dict]]:
    """fp32 ms a pretraining step by key_of, from seed_time.py's files: every batch size timed."""
    out: dict[tuple, list[dict]] = {}
    for f in sorted(p for d in timing_dirs for p in d.glob("*.json")):
        d = json.loads(f.read_text())
        s = d["profile_settings"]
        out.setdefault(key_of(s), []).append({"ms": d["stages"]["pretrain vanilla"]["ms_per_step"]["fp32"],
                                              "batch_size": s["pretrain"]["batch_size"], "device": d["device"],
                                              "source": str(f.relative_to(ROOT))})
    return out


def step_for(timings: list[dict] | None, batch: int) -> dict | None:
    """The step time of this batch size where it was timed; else the nearest timed batch's, scaled by
    the batch (a step's work is about proportional to its lines), and marked so."""
    if not timings:
        return None
    exact = [t for t in timings if t["batch_size"] == batch]
    if exact:
        return exact[-1]
    # nearest by ratio, the larger batch on a tie (its step is less bound by per-operation overhead)
    t = min(timings, key=lambda t: (abs(math.log(t["batch_size"] / batch)), -t["batch_size"]))
    return {**t, "ms": t["ms"] * batch / t["batch_size"], "scaled_from_batch": t["batch_size"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", default="results/search-small")
    ap.add_argument("--focused", default="results/search-focused")
    ap.add_argument("--batch_search", default="results/search-batch")
    ap.add_argument("--keys_search", default="results/search-keys")
    ap.add_argument("--course_curve", default="results/course_keyed/curve/laptop300/curve.json")
    args = ap.parse_args()
    search, focused, batch = ROOT / args.search, ROOT / args.focused, ROOT / args.batch_search
    keys = ROOT / args.keys_search
    timing = step_ms([search / "cpu-step-time", focused / "cpu-step-time", batch / "cpu-step-time",
                      keys / "cpu-step-time"])
    # (curve, which search it belongs to)
    curves = [(Path(p), "small") for p in sorted(glob.glob(str(search / "round*" / "*.json")))]
    curves += [(Path(p), "focused") for p in sorted(glob.glob(str(focused / "cpu" / "*" / "curve.json")))]
    curves += [(Path(p), "batch") for p in sorted(glob.glob(str(batch / "cpu" / "*" / "curve.json")))]
    curves += [(Path(p), "keys") for p in sorted(glob.glob(str(keys / "cpu" / "*" / "curve.json")))]
    curves.append((ROOT / args.course_curve, "course"))
    rows = []
    for path, which in curves:
        c = json.loads(path.read_text())
        s = c["profile"]
        t = step_for(timing.get(key_of(s)), s["pretrain"]["batch_size"])
        steps_per_epoch = c["probes"][0]["step"] / c["probes"][0]["epoch"] if c["probes"] else math.nan
        probes = [{"epoch": p["epoch"], "heldout_accuracy": p["heldout_accuracy"],
                   "heldout_correct": p["heldout_correct"], "heldout_total": p["heldout_total"],
                   "line_recall": 100.0 * p["line_recall_pretrained"]["correct"] / p["line_recall_pretrained"]["total"],
                   "pretrain_loss": p["pretrain_loss"],
                   "cpu_fp32_minutes": None if t is None else p["epoch"] * steps_per_epoch * t["ms"] / 60000}
                  for p in c["probes"]]
        rows.append({"curve": str(path.relative_to(ROOT)), "search": which, "name": s["name"], "variant": c["variant"],
                     "seed": c["seed"], "size": size_of(s), "params": params_of(s), "max_chars": s["data"]["max_chars"],
                     "drop_dates": bool(s["data"].get("drop_dates")), "word_keys": s["model"].get("word_keys", 0),
                     "learning_rate": s["pretrain"]["learning_rate"], "batch_size": s["pretrain"]["batch_size"],
                     "max_epochs": s["pretrain"]["max_epochs"], "trained_on": c["device"],
                     "cpu_step": t, "probes": probes,
                     "best_heldout": max((p["heldout_accuracy"] for p in probes), default=None)})
    record = {
        "what": "held-out accuracy and line recall of each candidate's pretraining against the fp32 minutes of "
                "that pretraining on 2 CPU cores (one variant; a seed of the study pretrains two)",
        "command": "python bench/frontier.py",
        "searched_with": ["bash bench/search_small_gpu.sh OUT 9 8  (round 1, commit db3d13b)",
                          "ROUND=long PROBE_EVERY=20 BUDGET_S=330 bash bench/search_small_gpu.sh OUT 6 8  "
                          "(round 2, commit b4a28c2)",
                          "bash bench/search_cpu.sh configs/search-focused/queue.txt results/search-focused/cpu  "
                          "(round 3, commit 1e9e391, on 2 CPU cores)",
                          "bash bench/search_cpu.sh configs/search-batch/queue.txt results/search-batch/cpu  "
                          "(round 4, commit 5779042, on 2 CPU cores)",
                          "bash bench/search_cpu.sh configs/search-keys/queue.txt results/search-keys/cpu  "
                          "(round 5, commits 3b37051 and after, on 2 CPU cores)"],
        "note": "the curves of rounds 1-2 were trained on one NVIDIA H200 in fp32 (their 'commit' field names the "
                "checkout the device copy held, not the commits above); dev was never used",
        "rows": rows,
    }
    (search / "frontier.json").write_text(json.dumps(record, indent=1) + "\n")

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = {}
    for r in rows:
        if r["variant"] != "vanilla" or r["cpu_step"] is None:
            continue
        xs = [p["cpu_fp32_minutes"] for p in r["probes"]]
        ys = [p["heldout_accuracy"] for p in r["probes"]]
        c = colors.setdefault(r["size"], f"C{len(colors)}")
        course = "laptop300" in r["curve"]
        label = r["size"] + (": the laptop profile, one seed" if course else "")
        if r["search"] == "keys":
            label = r["size"] + " with word keys"
            c = colors.setdefault(label, f"C{len(colors)}")
        style = {"course": "-o", "focused": "--s", "batch": ":^", "keys": "-D"}.get(r["search"], "-")
        ax.plot(xs, ys, style, color=c, ms=5 if r["search"] in ("batch", "keys") else 3,
                alpha=0.5 if r["search"] == "small" else 0.9, lw=2 if course or r["search"] == "keys" else 1,
                label=label if label not in ax.get_legend_handles_labels()[1] else None)
    ax.axhline(26.6, color="gray", ls="--", lw=1)
    ax.text(1, 27.5, "course write-up: 26.6% (dev)", color="gray", fontsize=8)
    ax.axvline(10, color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("fp32 pretraining minutes on 2 CPU cores (AMD EPYC, AVX2), one variant")
    ax.set_ylabel("held-out accuracy (%), 300 training pairs kept apart")
    ax.set_title("What each model size stores and gets out, against CPU minutes\n"
                 "(dashed with squares: round 3, lines without dates cut to 56 characters;\n"
                 "dotted with triangles: round 4, batches of 8-16; diamonds: round 5, word keys)", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(search / "frontier.png", dpi=110)
    print(f"wrote {search / 'frontier.json'} and frontier.png ({len(rows)} curves)")


if __name__ == "__main__":
    main()
