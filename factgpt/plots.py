"""Figures of the study: loss and learning-rate curves, accuracy per row."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .config import Profile  # noqa: E402
from .fileio import atomic_write  # noqa: E402
from .results import REFERENCE, ROW_TITLES  # noqa: E402
from .pipeline import stage_config  # noqa: E402
from .train import lr_multiplier  # noqa: E402


def save_png(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())


def _smooth(v: list[float], k: int) -> list[float]:
    out, acc = [], 0.0
    for i, x in enumerate(v):
        acc += x
        if i >= k:
            acc -= v[i - k]
        out.append(acc / min(i + 1, k))
    return out


def loss_curves(out: Path, stage: str, seed_dirs: list[Path]) -> Path | None:
    """Loss (smoothed) and learning rate against step, one colour per variant."""
    files = sorted(f for d in seed_dirs for f in d.glob(f"*.{stage}.safetensors.history.json"))
    if not files:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    ax2 = ax.twinx()
    colors = {"vanilla": "tab:blue", "synthesizer": "tab:orange"}
    seen_lr = set()
    for f in files:
        variant = f.name.split(".")[0]
        h = json.loads(f.read_text())["history"]
        steps = [r["step"] for r in h]
        ax.plot(steps, _smooth([r["loss"] for r in h], 10), color=colors.get(variant, "gray"), alpha=0.7,
                lw=1, label=f"{variant} ({f.parent.name})")
        if variant not in seen_lr:
            ax2.plot(steps, [r["lr"] for r in h], color=colors.get(variant, "gray"), ls="--", lw=0.8)
            seen_lr.add(variant)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (10-step mean)")
    ax2.set_ylabel("learning rate (dashed)")
    ax.set_title(f"{stage}: loss and learning rate")
    ax.legend(fontsize=7, loc="upper right")
    path = out / f"{stage}_loss.png"
    save_png(fig, path)
    return path


def accuracy_bars(out: Path, results: dict) -> Path:
    rows = list(results["rows"])
    fig, ax = plt.subplots(figsize=(7, 3.8))
    xs = range(len(rows))
    means = [results["rows"][r]["mean"] for r in rows]
    stds = [results["rows"][r]["std"] for r in rows]
    ref = [results["reference"].get(r, 0.0) for r in rows]
    ax.bar([x - 0.2 for x in xs], means, 0.4, yerr=stds, capsize=3, label=f"this run ({results['profile']}, "
           f"{len(results['seeds'])} seed{'s' if len(results['seeds']) > 1 else ''})")
    ax.bar([x + 0.2 for x in xs], ref, 0.4, color="lightgray", label="seed write-up (course scale)")
    for x, m, sd in zip(xs, means, stds):
        ax.text(x - 0.2, m + sd + 0.5, f"{m:.1f}", ha="center", fontsize=8)  # above the error bar
    ax.set_xticks(list(xs))
    ax.set_xticklabels([ROW_TITLES.get(r, r).replace(", ", ",\n") for r in rows], fontsize=8)
    ax.set_ylabel("dev accuracy (%)")
    ax.legend(fontsize=8)
    path = out / "accuracy.png"
    save_png(fig, path)
    return path


def study_plots(out: Path, results: dict) -> list[Path]:
    seed_dirs = [out / f"seed{s}" for s in results["seeds"]]
    made = [accuracy_bars(out, results)]
    for stage in ("pretrain", "finetune"):
        p = loss_curves(out, stage, seed_dirs)
        if p:
            made.append(p)
    return made


def schedule_plot(profile: Profile, stage: str, n_docs: int, out_dir: Path) -> dict:
    """The learning rate a stage of a profile will use, step by step, with its landmarks.

    Computed from the trainer's own schedule function, so the plot is the
    schedule training runs, not a re-derivation of it.
    """
    cfg = stage_config(profile, stage, n_docs)
    n_ex = n_docs if stage == "pretrain" else 2000
    per_epoch = math.ceil(n_ex / cfg.batch_size)
    sizes = [min(cfg.batch_size, n_ex - i * cfg.batch_size) for i in range(per_epoch)]
    steps, lrs, tokens, at_final = [], [], 0, None
    for step in range(cfg.max_epochs * per_epoch):
        steps.append(step + 1)
        if at_final is None and tokens >= cfg.final_tokens:
            at_final = step + 1
        lrs.append(cfg.learning_rate * lr_multiplier(tokens, cfg))
        tokens += sizes[step % per_epoch] * cfg.tokens_per_example
    floor = next((s for s, lr in zip(steps, lrs) if lr <= cfg.learning_rate * 0.1 + 1e-12 and s > 1), None)
    back = None
    if floor is not None:
        back = next((s for s, lr in zip(steps, lrs) if s > floor and lr >= cfg.learning_rate * 0.999), None)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(steps, lrs, lw=1.2)
    marks = ((floor, "10% floor", 0.35, "right"), (at_final, "final_tokens", 0.65, "left"),
             (back, "back at the peak", 1.02, "center"))
    for s, label, y, ha in marks:
        if s:
            ax.axvline(s, color="gray", ls=":", lw=1)
            ax.text(s, cfg.learning_rate * y, f" {label} \n step {s} ", fontsize=7, ha=ha, va="bottom")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_ylim(0, cfg.learning_rate * 1.25)
    ax.set_title(f"{profile.name} profile, {stage}: {cfg.max_epochs} epochs × {per_epoch} steps; "
                 f"final_tokens reached at progress 1", fontsize=9)
    path = out_dir / f"{profile.name}_{stage}_lr.png"
    save_png(fig, path)
    return {"profile": profile.name, "stage": stage, "steps": len(steps), "peak_lr": cfg.learning_rate,
            "first_step_at_floor": floor, "step_reaching_final_tokens": at_final, "first_step_back_at_peak": back,
            "final_progress": (tokens - cfg.warmup_tokens) / (cfg.final_tokens - cfg.warmup_tokens),
            "figure": path.name}


def recipe_plot(path: Path, recipes: list[dict]) -> Path:
    """Dev accuracy against CPU minutes per recipe (error bars: std over seeds), course rows for reference.

    Points carry numbers, and the names stand in a numbered list beside the plot, so
    that no two labels overlap however close the points are; recipes measured on
    three or more seeds are filled, those on fewer are hollow.
    """
    rs = sorted(recipes, key=lambda r: (r["track"], -r["dev"]["mean"]))
    fig, (ax, side) = plt.subplots(1, 2, figsize=(12, 5.6), gridspec_kw={"width_ratios": [1.35, 1]})
    markers = {"A": "o", "B": "s"}
    for i, r in enumerate(rs, 1):
        many = len(r["seeds"]) >= 3
        color = "C0" if r["track"] == "A" else "C1"
        ax.errorbar(r["minutes"]["mean"], r["dev"]["mean"], yerr=r["dev"]["std"], fmt=markers[r["track"]],
                    color=color, mfc=color if many else "white", mec=color, capsize=3, ms=7)
    for row, label in (("vanilla_pretrain", "course pretrain → finetune"), ("london", "London baseline")):
        ax.axhline(REFERENCE[row], color="gray", ls=":", lw=1)
        ax.text(0.01, REFERENCE[row] + 0.8, f"{label} ({REFERENCE[row]:.1f}%, seed write-up)", fontsize=7,
                color="gray", transform=ax.get_yaxis_transform())
    ax.set_xlabel("CPU minutes per run (training and evaluation)")
    ax.set_ylabel("dev accuracy (%)")
    ax.set_ylim(0, max(REFERENCE["vanilla_pretrain"] + 4, ax.get_ylim()[1]))
    ax.grid(alpha=0.25)
    # Each number goes to the first spot around its point that no earlier number took.
    fig.canvas.draw()
    taken: list[tuple[float, float]] = []
    spots = [(6, 4), (6, -11), (-14, 4), (-14, -11), (6, 14), (-14, 14), (6, -21), (-14, -21), (16, 4), (-24, 4)]
    for i, r in enumerate(rs, 1):
        px, py = ax.transData.transform((r["minutes"]["mean"], r["dev"]["mean"]))
        k = 72.0 / fig.dpi  # pixels to points
        dx, dy = next(((dx, dy) for dx, dy in spots
                       if all(abs(px + dx / k - tx) > 14 or abs(py + dy / k - ty) > 11 for tx, ty in taken)), spots[0])
        taken.append((px + dx / k, py + dy / k))
        ax.annotate(str(i), (r["minutes"]["mean"], r["dev"]["mean"]), fontsize=8, xytext=(dx, dy),
                    textcoords="offset points")
    legend = [plt.Line2D([], [], ls="", marker="o", color="C0", label="track A (course model)"),
              plt.Line2D([], [], ls="", marker="s", color="C1", label="track B (any model)"),
              plt.Line2D([], [], ls="", marker="o", color="gray", label="filled: 3 or more seeds"),
              plt.Line2D([], [], ls="", marker="o", color="gray", mfc="white", label="hollow: 1–2 seeds")]
    ax.legend(handles=legend, fontsize=8, loc="lower right")
    side.axis("off")
    lines = [f"{i:>2}  {r['recipe']}  ({r['dev']['mean']:.1f}%, {len(r['seeds'])} seed{'s' if len(r['seeds']) > 1 else ''})"
             for i, r in enumerate(rs, 1)]
    side.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace",
              fontsize=min(9.0, 300.0 / max(1, len(lines))), transform=side.transAxes)
    fig.tight_layout()
    save_png(fig, path)
    return path


def curve_plot(path: Path, *records: dict) -> Path:
    """Held-out accuracy and line recall against pretraining minutes, one colour per curve."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, rec in enumerate(records):
        probes = rec["probes"]
        if not probes:
            continue
        c = colours[i % len(colours)]
        name = rec["profile"]["name"] if len(records) > 1 else ""
        minutes = [p["pretrain_minutes"] for p in probes]
        ax.plot(minutes, [p["heldout_accuracy"] for p in probes], "-o", color=c, ms=4,
                label=f"{name} held-out accuracy (finetuned copy)".strip())
        ax.plot(minutes, [p["line_recall_pretrained"]["accuracy"] for p in probes], "--s", color=c, ms=3.5,
                alpha=0.8, label=f"{name} line recall (pretrained model)".strip())
        for p in probes[:: max(1, len(probes) // 8)]:
            ax.annotate(f"{p['epoch']}", (p["pretrain_minutes"], p["heldout_accuracy"]), fontsize=7,
                        textcoords="offset points", xytext=(0, 5), ha="center", color=c)
    first = records[0]
    # The write-up's pretrain → finetune figure for the variant this curve trained.
    reference = REFERENCE[f"{first['variant']}_pretrain"]
    ax.axhline(reference, color="grey", lw=0.8, ls=":")
    ax.text(ax.get_xlim()[0], reference, f" seed write-up, {first['variant']} pretrain → finetune (dev)",
            fontsize=7, va="bottom", color="grey")
    ax.set_xlabel(f"pretraining minutes ({first['device']}; probes not counted; numbers: epochs)")
    ax.set_ylabel("% of the held-out people")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if any(r["probes"] for r in records):
        ax.legend(fontsize=7.5, loc="upper left")
    ax.set_title(f"What pretraining stores and finetuning extracts ({first['variant']}, seed {first['seed']})", fontsize=10)
    save_png(fig, path)
    return path
