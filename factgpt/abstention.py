"""Choosing and measuring when a recite model should say "I don't know".

The rule (grounded.AbstentionRule: a score and a threshold) is chosen without
dev: on the held-out slice of the training pairs (people the model has a line
for but was never asked about) and on made-up names recombined from training
people only (a given name of one, the surname of another, occurring in no data
file). The score chosen is the one that best tells held-out people from made-up
names (AUROC); its threshold is the lowest that refuses at least
REFUSE_MADE_UP of the made-up names and leaves at most MAX_WRONG of the
held-out people answered wrongly, so that the model answers as much as it can
within those two bounds.

Then it is reported, once, on the 500 dev questions and on 500 fresh made-up
names drawn with another seed: shares answered, answered correctly, answered
wrongly and made-up names refused; the AUROC of every score for real against
made-up names and for right against wrong answers; a risk–coverage curve on
dev with its area.

    factgpt abstention --out results/abstention
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .analysis.confidence import auroc
from .checkpoint import load_model
from .errors import InputError
from .fileio import bundled_path, read_text, write_text_atomic
from .grounded import SCORES, AbstentionRule, GroundedAnswer, answer_questions
from .heldout import name_of, split_heldout
from .people import name_parts, recombined_names
from .pipeline import load_corpus, load_qa
from .plots import plt, save_png
from .runinfo import device_name, git_commit

REFUSE_MADE_UP = 0.97  # share of made-up names to refuse, at least (the target is 95%: a margin for new names)
MAX_WRONG = 0.02  # share of real people answered wrongly, at most (the target is 3%)
SELECT_SEED, REPORT_SEED = 0, 1  # the seeds of the two sets of made-up names


def training_names() -> list[str]:
    text = read_text(bundled_path("birth_places_train.tsv"))
    return [n for n in (name_of(line.split("\t", 1)[0]) for line in text.splitlines()) if n]


def made_up_questions(n: int, seed: int, exclude: Sequence[str] = ()) -> list[str]:
    """n questions about made-up people: a training person's given name with another's surname,
    absent from every data file (and from `exclude`)."""
    haystacks = [read_text(bundled_path(f)) for f in ("wiki.txt", "birth_places_train.tsv", "birth_dev.tsv",
                                                       "birth_test_inputs.tsv")]
    firsts, lasts = name_parts(training_names())
    skip = set(exclude)
    names = [x for x in recombined_names(firsts, lasts, haystacks, n + len(skip), seed) if x not in skip][:n]
    return [f"Where was {x} born?" for x in names]


@dataclass
class Outcome:
    """What a rule does on real people (with gold answers) and on made-up names."""
    answered: float  # share of real people answered
    correct: float  # share of real people answered correctly
    wrong: float  # share of real people answered wrongly
    made_up_refused: float  # share of made-up names refused

    @classmethod
    def of(cls, real: list[GroundedAnswer], gold: list[str], made_up: list[GroundedAnswer], score: str,
           threshold: float) -> "Outcome":
        ans = np.array([a.scores[score] >= threshold for a in real])
        right = np.array([a.guess == g for a, g in zip(real, gold, strict=True)])
        refused = np.array([a.scores[score] < threshold for a in made_up])
        return cls(float(ans.mean()), float((ans & right).mean()), float((ans & ~right).mean()),
                   float(refused.mean()) if len(made_up) else float("nan"))


def score_aurocs(real: list[GroundedAnswer], gold: list[str], made_up: list[GroundedAnswer]) -> dict[str, dict]:
    """Per score: AUROC of real against made-up names, and of right against wrong answers of real people."""
    right = [a.guess == g for a, g in zip(real, gold, strict=True)]
    out = {}
    for k in SCORES:
        r = [a.scores[k] for a in real]
        m = [a.scores[k] for a in made_up]
        out[k] = {"real_vs_made_up": auroc(r + m, [True] * len(r) + [False] * len(m)),
                  "right_vs_wrong": auroc(r, right)}
    return out


def choose_rule(real: list[GroundedAnswer], gold: list[str], made_up: list[GroundedAnswer]) -> tuple[AbstentionRule, dict]:
    """The score that best separates real from made-up names, at the lowest threshold within both bounds."""
    aucs = score_aurocs(real, gold, made_up)
    score = max(SCORES, key=lambda k: (aucs[k]["real_vs_made_up"] or 0.0, aucs[k]["right_vs_wrong"] or 0.0))
    candidates = sorted({a.scores[score] for a in real + made_up} | {0.0, 1.0})
    feasible = [t for t in candidates
                if (o := Outcome.of(real, gold, made_up, score, t)).made_up_refused >= REFUSE_MADE_UP
                and o.wrong <= MAX_WRONG]
    # Without a feasible threshold, the one that refuses the most made-up names per real person lost.
    threshold = feasible[0] if feasible else max(
        candidates, key=lambda t: (o := Outcome.of(real, gold, made_up, score, t)).made_up_refused - (1 - o.correct))
    return AbstentionRule(score, float(threshold)), {"aurocs": aucs, "feasible": bool(feasible)}


def risk_coverage(real: list[GroundedAnswer], gold: list[str], score: str) -> dict[str, Any]:
    """Answer the most confident first: the share wrong among those answered against the share answered."""
    conf = np.array([a.scores[score] for a in real])
    wrong = np.array([a.guess != g for a, g in zip(real, gold, strict=True)], dtype=float)
    order = np.argsort(-conf, kind="stable")
    k = np.arange(1, len(order) + 1)
    risk = np.cumsum(wrong[order]) / k
    coverage = k / len(order)
    return {"coverage": coverage.round(4).tolist(), "risk": risk.round(4).tolist(),
            "area": float(np.mean(risk))}


def plot_risk_coverage(path: Path, curve: dict[str, Any], rule: AbstentionRule, at: Outcome, model: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.array(curve["coverage"]) * 100, np.array(curve["risk"]) * 100, lw=1.8,
            label=f"{rule.score} (area {curve['area'] * 100:.2f}%)")
    cov, risk = at.answered, (at.wrong / at.answered if at.answered else 0.0)
    ax.plot([cov * 100], [risk * 100], "o", color="C3", label=f"chosen threshold {rule.threshold:.3g}")
    ax.set_xlabel("dev questions answered (%)")
    ax.set_ylabel("wrong among those answered (%)")
    ax.set_title(f"Risk–coverage on dev: {model}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    save_png(fig, path)
    return path


def _answers(model, vocab, questions: list[str], max_chars: int, label: str) -> list[GroundedAnswer]:
    t0 = time.time()
    out = answer_questions(model, vocab, questions, max_chars)
    print(f"{time.strftime('%H:%M:%S')} {label}: {len(questions)} questions in {time.time() - t0:.0f} s",
          file=sys.stderr, flush=True)
    return out


def measure(model_path: Path, out: Path, n_made_up: int = 500, argv: Sequence[str] = (),
            label: str | None = None) -> dict[str, Any]:
    """Choose the rule on the held-out slice and made-up names, then report it on dev and fresh names."""
    corpus = load_corpus(bundled_path("wiki.txt"))
    model, meta = load_model(model_path, vocab=corpus.vocab)
    if not meta.get("spec", {}).get("recite"):
        raise InputError(model_path, "not a recite model: abstention needs a model that recites its lines")
    max_chars = int(meta["max_chars"] or model.config.block_size)
    block = model.config.block_size
    rows = load_qa(bundled_path("birth_places_train.tsv"), corpus.vocab, True, block)
    dev = load_qa(bundled_path("birth_dev.tsv"), corpus.vocab, True, block)
    _, held = split_heldout(rows, corpus.text, exclude={r.question for r in dev})
    if meta.get("heldout_questions") and [r.question for r in held] != meta["heldout_questions"]:
        raise InputError(model_path, "the model's held-out slice differs from this data's; cannot choose on it")
    select_fake = made_up_questions(n_made_up, SELECT_SEED)
    report_fake = made_up_questions(n_made_up, REPORT_SEED, exclude=[name_of(q) or "" for q in select_fake])

    held_a = _answers(model, corpus.vocab, [r.question for r in held], max_chars, "held-out")
    sel_a = _answers(model, corpus.vocab, select_fake, max_chars, "made-up (selection)")
    rule, chosen = choose_rule(held_a, [r.answer for r in held], sel_a)
    print(f"rule: answer when {rule.score} ≥ {rule.threshold:.4g}", file=sys.stderr)

    dev_a = _answers(model, corpus.vocab, [r.question for r in dev], max_chars, "dev")
    rep_a = _answers(model, corpus.vocab, report_fake, max_chars, "made-up (report)")
    dev_gold = [r.answer for r in dev]
    curve = risk_coverage(dev_a, dev_gold, rule.score)
    at_dev = Outcome.of(dev_a, dev_gold, rep_a, rule.score, rule.threshold)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_risk_coverage(out / "risk_coverage.png", curve, rule, at_dev, meta.get("recipe", model_path.name))
    result = {
        "model": label or str(model_path), "recipe": meta.get("recipe"), "seed": meta.get("seed"),
        "rule": asdict(rule), "bounds": {"refuse_made_up": REFUSE_MADE_UP, "max_wrong": MAX_WRONG},
        "selection": {"real": "held-out slice of the training pairs", "n_real": len(held),
                      "made_up": f"recombined training names, seed {SELECT_SEED}", "n_made_up": len(select_fake),
                      "feasible": chosen["feasible"], "aurocs": chosen["aurocs"],
                      "at_rule": asdict(Outcome.of(held_a, [r.answer for r in held], sel_a, rule.score, rule.threshold))},
        "report": {"real": "dev", "n_real": len(dev), "made_up": f"recombined training names, seed {REPORT_SEED}",
                   "n_made_up": len(report_fake), "aurocs": score_aurocs(dev_a, dev_gold, rep_a),
                   "at_rule": asdict(at_dev),
                   "without_abstention": {"correct": float(np.mean([a.guess == g for a, g in zip(dev_a, dev_gold)]))},
                   "risk_coverage": curve, "figure": png.name},
        "examples": {"dev": [a.to_json() | {"gold": g} for a, g in list(zip(dev_a, dev_gold))[:5]],
                     "made_up": [a.to_json() for a in rep_a[:5]]},
        "command": "factgpt " + " ".join(shlex.quote(x) for x in argv),
        "device": device_name(torch.device("cpu")), "torch": torch.__version__, "commit": git_commit(),
    }
    write_text_atomic(out / "abstention.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def summary(result: dict[str, Any]) -> str:
    r, s = result["report"]["at_rule"], result["report"]["aurocs"][result["rule"]["score"]]
    return (f"answer when {result['rule']['score']} ≥ {result['rule']['threshold']:.4g}: dev answered "
            f"{r['answered']:.1%}, correct {r['correct']:.1%}, wrong {r['wrong']:.1%}; made-up refused "
            f"{r['made_up_refused']:.1%}; AUROC real/made-up {s['real_vs_made_up']:.3f}, right/wrong "
            f"{s['right_vs_wrong']:.3f}; risk–coverage area {result['report']['risk_coverage']['area']:.2%}")
