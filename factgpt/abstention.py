"""Choosing and measuring when a recite model should say "I don't know".

The rule (grounded.AbstentionRule: a threshold on each of two scores) is
chosen without dev: on the held-out slice of the training pairs (people the
model has a line for but was never asked about) and on made-up names
recombined from training people only (a given name of one, the surname of
another, occurring in no data file). Two scores are taken: the one that best
tells held-out people from made-up names ("is there a stored line", by AUROC)
and the one that best tells the held-out people's right answers from wrong
ones ("is the answer in it"). Their thresholds are the pair that answers the
most held-out people correctly while refusing at least REFUSE_MADE_UP of the
made-up names and answering at most MAX_WRONG of the held-out people wrongly.

Then it is reported, once, on the 500 dev questions and on 500 fresh made-up
names drawn with another seed: shares answered, answered correctly, answered
wrongly and made-up names refused; the AUROC of every score for real against
made-up names and for right against wrong answers; a risk–coverage curve on
dev with its area.

    factgpt abstention --out results/abstention

Every answer and score is kept in answers.jsonl beside the results, and
`--answers FILE` chooses and reports again from such a file without decoding.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .analysis.confidence import auroc
from .checkpoint import load_model, load_tensors
from .errors import InputError
from .fileio import bundled_path, read_text, write_text_atomic
from .grounded import CONFIDENCE, SCORES, AbstentionRule, GroundedAnswer, answer_questions
from .experiment import FORMATS, DataBundle, command_line, provenance
from .heldout import name_of
from .people import name_parts, recombined_names
from .plots import plt, save_png

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


GRID = 400  # candidate thresholds per score: quantiles of the selection's scores


@dataclass
class Record:
    """One question of one set, as the model answered it without a rule."""
    part: str  # heldout | select_made_up | dev | report_made_up
    question: str
    gold: str | None
    guess: str
    recitation: str
    scores: dict[str, float]

    @classmethod
    def of(cls, part: str, a: GroundedAnswer, gold: str | None) -> "Record":
        return cls(part, a.question, gold, a.guess, a.recitation, a.scores)


@dataclass
class Outcome:
    """What a rule does on real people (with gold answers) and on made-up names."""
    answered: float  # share of real people answered
    correct: float  # share of real people answered correctly
    wrong: float  # share of real people answered wrongly
    made_up_refused: float  # share of made-up names refused

    @classmethod
    def of(cls, real: list[Record], made_up: list[Record], rule: AbstentionRule) -> "Outcome":
        ans = np.array([rule.answers(r.scores) for r in real])
        right = np.array([r.guess == r.gold for r in real])
        refused = np.array([not rule.answers(r.scores) for r in made_up])
        return cls(float(ans.mean()), float((ans & right).mean()), float((ans & ~right).mean()),
                   float(refused.mean()) if len(made_up) else float("nan"))


def score_aurocs(real: list[Record], made_up: list[Record], names: Sequence[str] = tuple(SCORES)) -> dict[str, dict]:
    """Per score: AUROC of real against made-up names, and of right against wrong answers of real people."""
    right = [r.guess == r.gold for r in real]
    out = {}
    for k in names:
        r = [x.scores[k] for x in real]
        m = [x.scores[k] for x in made_up]
        out[k] = {"real_vs_made_up": auroc(r + m, [True] * len(r) + [False] * len(m)),
                  "right_vs_wrong": auroc(r, right)}
    return out


def best_thresholds(real: list[Record], made_up: list[Record], line: str, answer: str) -> dict[str, float] | None:
    """The thresholds on `line` and `answer` that answer the most real people correctly while refusing at
    least REFUSE_MADE_UP of the made-up names and answering at most MAX_WRONG of the real people wrongly
    (ties: fewer wrong, then lower thresholds), as {score: threshold}; None where no pair meets both bounds.
    The names need not be SCORES: a benchmark may add scores of its own to the records."""
    right = np.array([r.guess == r.gold for r in real])

    def arrays(k: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = np.array([x.scores[k] for x in real])
        m = np.array([x.scores[k] for x in made_up])
        grid = np.unique(np.concatenate([[0.0], np.quantile(np.concatenate([r, m]), np.linspace(0, 1, GRID))]))
        return r, m, grid

    r1, m1, g1 = arrays(line)
    r2, m2, g2 = arrays(answer)
    ok2_real = r2[:, None] >= g2[None, :]  # (people, thresholds)
    ok2_made = m2[:, None] >= g2[None, :]
    best: tuple | None = None
    for t1 in g1:
        ans = (r1 >= t1)[:, None] & ok2_real
        correct = (ans & right[:, None]).mean(0)
        wrong = (ans & ~right[:, None]).mean(0)
        refused = 1.0 - ((m1 >= t1)[:, None] & ok2_made).mean(0)
        feasible = (refused >= REFUSE_MADE_UP) & (wrong <= MAX_WRONG)
        for j in np.flatnonzero(feasible):
            key = (correct[j], -wrong[j], -t1, -g2[j])
            if best is None or key > best[0]:
                best = (key, float(t1), float(g2[j]))
    if best is None:
        return None
    if line == answer:
        return {line: max(best[1], best[2])}
    return {line: best[1], answer: best[2]}


def choose_rule(real: list[Record], made_up: list[Record],
                names: Sequence[str] = tuple(SCORES)) -> tuple[AbstentionRule, dict]:
    """Of the scores `names`, the line score and the answer score (best AUROCs), at the threshold pair
    that answers the most real people correctly within both bounds."""
    aucs = score_aurocs(real, made_up, names)
    line = max(names, key=lambda k: (aucs[k]["real_vs_made_up"] or 0.0, k))
    answer = max(names, key=lambda k: (aucs[k]["right_vs_wrong"] or 0.0, k))
    thresholds = best_thresholds(real, made_up, line, answer)
    # nothing within both bounds: refuse everything rather than guess
    rule = AbstentionRule(thresholds or {line: 1.0})
    return rule, {"aurocs": aucs, "line_score": line, "answer_score": answer, "feasible": thresholds is not None}


SURE = 0.9  # a CONFIDENCE (line_mean_x_span) above which a wrong answer counts as a sure one


def confident_wrong(real: list[Record], above: float = SURE) -> dict[str, Any]:
    """Of the real people answered wrongly without a rule: how many with CONFIDENCE above `above`.
    No threshold refuses those without refusing the right answers below them."""
    wrong = [r for r in real if r.guess != r.gold]
    return {"confidence_above": above, "wrong": len(wrong),
            "confident": sum(r.scores[CONFIDENCE] > above for r in wrong)}


def risk_coverage(real: list[Record], score: str) -> dict[str, Any]:
    """Answer the most confident first: the share wrong among those answered against the share answered."""
    conf = np.array([r.scores[score] for r in real])
    wrong = np.array([r.guess != r.gold for r in real], dtype=float)
    order = np.argsort(-conf, kind="stable")
    k = np.arange(1, len(order) + 1)
    risk = np.cumsum(wrong[order]) / k
    return {"score": score, "coverage": (k / len(order)).round(4).tolist(), "risk": risk.round(4).tolist(),
            "area": float(np.mean(risk))}


def plot_risk_coverage(path: Path, curve: dict[str, Any], rule: AbstentionRule, at: Outcome, model: str) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(np.array(curve["coverage"]) * 100, np.array(curve["risk"]) * 100, lw=1.8,
            label=f"ranked by {curve['score']} (area {curve['area'] * 100:.2f}%)")
    risk = at.wrong / at.answered if at.answered else 0.0
    ax.plot([at.answered * 100], [risk * 100], "o", color="C3", label=f"the rule: {rule.describe()}")
    ax.set_xlabel("dev questions answered (%)")
    ax.set_ylabel("wrong among those answered (%)")
    ax.set_title(f"Risk–coverage on dev: {model}")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    save_png(fig, path)
    return path


def _answers(model, vocab, part: str, questions: list[str], golds: list[str | None], max_chars: int) -> list[Record]:
    t0 = time.time()
    got = answer_questions(model, vocab, questions, max_chars)
    print(f"{time.strftime('%H:%M:%S')} {part}: {len(questions)} questions in {time.time() - t0:.0f} s",
          file=sys.stderr, flush=True)
    return [Record.of(part, a, g) for a, g in zip(got, golds, strict=True)]


def decode_all(model_path: Path, n_made_up: int) -> tuple[list[Record], dict[str, Any]]:
    """Every set answered by the model without a rule: (records, the model's metadata)."""
    vocab = DataBundle.load().vocab
    model, meta = load_model(model_path, vocab=vocab)
    if not meta.get("spec", {}).get("recite"):
        raise InputError(model_path, "not a recite model: abstention needs a model that recites its lines")
    max_chars = int(meta["max_chars"] or model.config.block_size)
    data = DataBundle.load(model.config.block_size)
    held, dev = data.heldout, data.dev
    if meta.get("heldout_questions") and [r.question for r in held] != meta["heldout_questions"]:
        raise InputError(model_path, "the model's held-out slice differs from this data's; cannot choose on it")
    select_fake = made_up_questions(n_made_up, SELECT_SEED)
    report_fake = made_up_questions(n_made_up, REPORT_SEED, exclude=[name_of(q) or "" for q in select_fake])
    records = []
    for part, qs, golds in (("heldout", [r.question for r in held], [r.answer for r in held]),
                            ("select_made_up", select_fake, [None] * len(select_fake)),
                            ("dev", [r.question for r in dev], [r.answer for r in dev]),
                            ("report_made_up", report_fake, [None] * len(report_fake))):
        records += _answers(model, vocab, part, qs, golds, max_chars)
    return records, meta


def read_records(path: Path) -> list[Record]:
    out = []
    for i, line in enumerate(read_text(path).splitlines(), 1):
        try:
            out.append(Record(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as e:
            raise InputError(path, f"not a record of `factgpt abstention`: {e}", i) from None
    return out


def decoded_by(answers: Path) -> dict[str, str] | None:
    """The command, commit and device that decoded a records file, from the abstention.json written beside it
    (or what that file kept of them); None where there is none or it does not say."""
    before = answers.parent / "abstention.json"
    try:
        prev = json.loads(read_text(before))
        src = prev.get("answers_decoded_by", prev)
        return {"command": src["command"], "commit": src["commit"], "device": src["device"]}
    except (OSError, InputError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None  # only provenance: the records themselves are what is read


def measure(model_path: Path, out: Path, n_made_up: int = 500, argv: Sequence[str] = (),
            label: str | None = None, answers: Path | None = None) -> dict[str, Any]:
    """Choose the rule on the held-out slice and made-up names, then report it on dev and fresh names."""
    _, meta = load_tensors(model_path)
    records = read_records(answers) if answers else decode_all(model_path, n_made_up)[0]
    part = {p: [r for r in records if r.part == p] for p in ("heldout", "select_made_up", "dev", "report_made_up")}
    rule, chosen = choose_rule(part["heldout"], part["select_made_up"])
    print(f"rule: answer when {rule.describe()}", file=sys.stderr)
    curve = risk_coverage(part["dev"], CONFIDENCE)
    at_dev = Outcome.of(part["dev"], part["report_made_up"], rule)
    out.mkdir(parents=True, exist_ok=True)
    if not answers:
        write_text_atomic(out / "answers.jsonl", "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n"
                                                        for r in records))
    png = plot_risk_coverage(out / "risk_coverage.png", curve, rule, at_dev, meta.get("recipe") or model_path.name)
    aucs = score_aurocs(part["dev"], part["report_made_up"])
    result = {
        "model": label or str(model_path), "recipe": meta.get("recipe"), "seed": meta.get("seed"),
        "rule": {"thresholds": rule.thresholds, "line_score": chosen["line_score"],
                 "answer_score": chosen["answer_score"], "confidence_shown": CONFIDENCE},
        "bounds": {"refuse_made_up": REFUSE_MADE_UP, "max_wrong": MAX_WRONG},
        "selection": {"real": "held-out slice of the training pairs", "n_real": len(part["heldout"]),
                      "made_up": f"recombined training names, seed {SELECT_SEED}",
                      "n_made_up": len(part["select_made_up"]), "feasible": chosen["feasible"],
                      "aurocs": chosen["aurocs"],
                      "at_rule": asdict(Outcome.of(part["heldout"], part["select_made_up"], rule)),
                      "confident_wrong": confident_wrong(part["heldout"])},
        "report": {"real": "dev", "n_real": len(part["dev"]), "made_up": f"recombined training names, seed {REPORT_SEED}",
                   "n_made_up": len(part["report_made_up"]), "aurocs": aucs, "at_rule": asdict(at_dev),
                   "without_abstention": {"correct": float(np.mean([r.guess == r.gold for r in part["dev"]]))},
                   "confident_wrong": confident_wrong(part["dev"]),
                   "risk_coverage": curve, "figure": png.name},
        "answers": "answers.jsonl",
        "format": FORMATS["abstention"], **provenance(torch.device("cpu"), command_line(argv)),
    }
    if answers and (decoded := decoded_by(answers)):  # chosen again from records: what decoded them
        result["answers_decoded_by"] = decoded
    write_text_atomic(out / "abstention.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def summary(result: dict[str, Any]) -> str:
    r, rep = result["report"]["at_rule"], result["report"]
    rule = AbstentionRule(result["rule"]["thresholds"])
    auc = rep["aurocs"][result["rule"]["confidence_shown"]]
    def f(x: float | None, spec: str) -> str:  # an AUROC is undefined where one class is empty (no right answer)
        return "–" if x is None else format(x, spec)

    return (f"answer when {rule.describe()}: dev answered {r['answered']:.1%}, correct {r['correct']:.1%}, "
            f"wrong {r['wrong']:.1%}; made-up refused {r['made_up_refused']:.1%}; AUROC of "
            f"{result['rule']['confidence_shown']} real/made-up {f(auc['real_vs_made_up'], '.3f')}, right/wrong "
            f"{f(auc['right_vs_wrong'], '.3f')}; risk–coverage area {rep['risk_coverage']['area']:.2%}")
