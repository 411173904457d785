"""`factgpt ask` with evidence and abstention, and how the abstention rule is chosen."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from factgpt.abstention import Outcome, Record, choose_rule, made_up_questions, risk_coverage, training_names
from factgpt.checkpoint import save_model
from factgpt.cli import main
from factgpt.fileio import bundled_path, read_text
from factgpt.grounded import SCORES, AbstentionRule, answer_questions

pytestmark = pytest.mark.usefixtures("single_thread")


def recite_checkpoint(path, make_model, vocab, rule: dict | None):
    model = make_model("vanilla", seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # a random model that does not stop at once
    meta = {"spec": {"recite": True, "span_answer": True}, "max_chars": 60}
    if rule is not None:
        meta["abstention"] = rule
    save_model(path, model, vocab, meta)
    return path


@pytest.fixture(scope="module")
def refusing(tmp_path_factory, make_model, vocab):
    """A recite model whose rule refuses everything (threshold 1 on a score below 1)."""
    return recite_checkpoint(tmp_path_factory.mktemp("m") / "refusing.safetensors", make_model, vocab,
                             {"thresholds": {"line_min": 1.0}})


@pytest.fixture(scope="module")
def answering(tmp_path_factory, make_model, vocab):
    return recite_checkpoint(tmp_path_factory.mktemp("m") / "answering.safetensors", make_model, vocab,
                             {"thresholds": {"line_min": 0.0}})


def test_a_refused_question_says_it_does_not_know_with_its_evidence(refusing, capsys):
    assert main(["ask", "Where was Zorblax Quimby born?", "--reading_params_path", str(refusing)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("I don't know: the model has no line for Zorblax Quimby") and "recited:" in out
    assert main(["ask", "Where was Zorblax Quimby born?", "--json", "--reading_params_path", str(refusing)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["answer"] is None and got["question"] == "Where was Zorblax Quimby born?"
    assert 0.0 <= got["confidence"] < 1.0 and isinstance(got["recited_line"], str)
    # refused on the line score: that score decided, and no answer was read off the line
    assert got["confidence_score"] == "line_min" and got["refused_for"] == "no_line"
    assert got["answer_confidence"] is None and got["line_confidence"] > 0.0


def test_questions_from_stdin_are_answered_one_a_line_in_order(answering, capsys, monkeypatch):
    qs = ["Where was Ann Lee born?", "", "Where was Bo Tang born?", "Where was Carl Maria von Weber born?"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(qs) + "\n"))
    assert main(["ask", "--json", "--reading_params_path", str(answering)]) == 0
    lines = capsys.readouterr().out.splitlines()
    got = [json.loads(x) for x in lines]
    assert [g["question"] for g in got] == [q for q in qs if q]
    assert all(g["answer"] is not None for g in got)  # threshold 0: everything is answered
    # the same answers as one question at a time
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["ask", qs[2], "--json", "--reading_params_path", str(answering)]) == 0
    alone = json.loads(capsys.readouterr().out)
    # the same answer and line; the probabilities agree up to float rounding (batched vs alone)
    assert {k: v for k, v in alone.items() if not isinstance(v, float)} == \
        {k: v for k, v in got[1].items() if not isinstance(v, float)}
    assert all(alone[k] == pytest.approx(got[1][k], abs=1e-4) for k, v in alone.items() if isinstance(v, float))


@pytest.mark.parametrize("stdin, why", [
    ("Where was Ann Lee born?\n   \nWhere is Paris?\n", "<stdin>:3: expected a name or a question like"),
    ("Where was Ann Lee born?\nWhere was Ann \u00e9\u4e2d born?\n", "<stdin>:2: characters outside"),
])
def test_a_bad_line_on_stdin_gets_its_error_in_place_and_the_others_are_answered(answering, capsys, monkeypatch,
                                                                                  stdin, why):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["ask", "--json", "--reading_params_path", str(answering)]) == 2  # exit 2 once all are answered
    cap = capsys.readouterr()
    first, second = (json.loads(x) for x in cap.out.splitlines())
    assert first["question"] == "Where was Ann Lee born?" and "answer" in first
    assert second["error"].startswith(why) and second["asked"] == stdin.split("\n")[-2].strip()
    assert cap.err.startswith(why) and cap.err.count("\n") == 1


def test_no_question_on_stdin_costs_one_line_and_exit_2(answering, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n"))
    assert main(["ask", "--reading_params_path", str(answering)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.startswith("<stdin>: no question given") and cap.err.count("\n") == 1


@pytest.mark.parametrize("q, why", [("", "question: empty question"), ("   ", "question: empty question"),
                                     ("Where was  born?", "question: expected"), ("Who is Bo?", "question: expected")])
def test_bad_question_arguments_cost_one_line_and_exit_2(answering, capsys, q, why):
    assert main(["ask", q, "--reading_params_path", str(answering)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(why) and err.count("\n") == 1


def test_the_rule_answers_exactly_where_every_score_reaches_its_threshold(make_model, vocab):
    model = make_model("vanilla", seed=1)
    qs = ["Where was Ann Lee born?", "Where was Bo Tang born?", "Where was Carl Maria von Weber born?"]
    free = answer_questions(model, vocab, qs, 60)
    for a in free:
        assert set(a.scores) == set(SCORES) and all(0.0 <= v <= 1.0 for v in a.scores.values())
        assert a.confidence == a.scores["line_mean_x_span"]
    t1 = sorted(a.scores["line_mean"] for a in free)[1]
    t2 = sorted(a.scores["span"] for a in free)[1]
    ruled = answer_questions(model, vocab, qs, 60, AbstentionRule({"line_mean": t1, "span": t2}))
    assert [a.answer is not None for a in ruled] == [a.scores["line_mean"] >= t1 and a.scores["span"] >= t2 for a in free]
    assert [a.guess for a in ruled] == [a.guess for a in free]
    assert all(a.answer in (None, a.guess) for a in ruled)
    with pytest.raises(ValueError):
        AbstentionRule({"nope": 0.5})
    with pytest.raises(ValueError):
        AbstentionRule({"span": 1.5})


def test_answers_without_the_free_decoding_are_the_same_answers(make_model, vocab):
    """free_answers=False skips the free answer where a span answers: every guess, answer and
    score a rule may read stays what the full decoding gives (a line cut to nothing has no span,
    so there the free answer is still decoded)."""
    model = make_model("vanilla", seed=1)
    qs = ["Where was Ann Lee born?", "Where was Bo Tang born?", "Where was Carl Maria von Weber born?"]
    for cut in (60, 20):  # 20: no room after the question, an empty line, no span
        rule = AbstentionRule({"line_mean": 0.1, "line_mean_x_span": 0.001})
        full = answer_questions(model, vocab, qs, cut, rule)
        lean = answer_questions(model, vocab, qs, cut, rule, free_answers=False)
        for a, b in zip(full, lean):
            assert (a.guess, a.answer, a.recitation, a.no_line) == (b.guess, b.answer, b.recitation, b.no_line)
            assert {k: v for k, v in a.scores.items() if k != "free_answer"} == \
                pytest.approx({k: v for k, v in b.scores.items() if k != "free_answer"})
        if cut == 20:
            assert all(b.free_answer == a.free_answer for a, b in zip(full, lean))
    with pytest.raises(ValueError):  # a rule on the free answer needs it decoded
        answer_questions(model, vocab, qs, 60, AbstentionRule({"free_answer": 0.5}), free_answers=False)


@pytest.mark.parametrize("free_answers", [True, False])
def test_a_line_refused_on_its_own_score_is_not_read(make_model, vocab, free_answers):
    """read_refused_lines=False: the questions the rule refuses on the line score alone get the
    same refusal (and the others the same answers and scores), without an answer read off the line."""
    model = make_model("vanilla", seed=1)
    qs = ["Where was Ann Lee born?", "Where was Bo Tang born?", "Where was Carl Maria von Weber born?",
          "Where was Dee Ng born?"]
    base = answer_questions(model, vocab, qs, 60)
    t = sorted(a.scores["line_mean"] for a in base)[2]  # two lines below it, two at or above
    rule = AbstentionRule({"line_mean": t, "line_mean_x_span": 0.0})
    full = answer_questions(model, vocab, qs, 60, rule, free_answers=free_answers)
    lean = answer_questions(model, vocab, qs, 60, rule, free_answers=free_answers, read_refused_lines=False)
    for a, b in zip(full, lean):
        assert (a.answer, a.recitation, a.no_line) == (b.answer, b.recitation, b.no_line)
        assert b.scores["line_mean"] == pytest.approx(a.scores["line_mean"])
        if a.scores["line_mean"] < t:  # refused for want of a line: nothing read
            assert a.no_line and b.guess == "" and math.isnan(b.scores["span"]) and math.isnan(b.scores["free_answer"])
        else:
            assert b.guess == a.guess and b.scores == pytest.approx(a.scores, nan_ok=True)
    assert sum(math.isnan(b.scores["span"]) for b in lean) == 2


def _rec(guess: str, gold: str | None = None, **scores: float) -> Record:
    full = {k: 0.5 for k in SCORES} | scores
    return Record("heldout" if gold else "select_made_up", "Where was X born?", gold, guess, "", full)


def test_choose_rule_takes_a_line_score_and_an_answer_score_within_both_bounds():
    # line_mean separates real people (0.9+) from made-up names (≤ 0.3); span separates right from wrong
    real = [_rec("A", "A", line_mean=0.99, span=0.9), _rec("B", "B", line_mean=0.95, span=0.8),
            _rec("Z", "C", line_mean=0.97, span=0.2), _rec("D", "D", line_mean=0.9, span=0.7)]
    made = [_rec("Q", line_mean=v, span=0.95) for v in (0.1, 0.2, 0.3)]
    rule, info = choose_rule(real, made)
    assert (info["line_score"], info["answer_score"]) == ("line_mean", "span") and info["feasible"]
    assert info["aurocs"]["line_mean"]["real_vs_made_up"] == 1.0
    o = Outcome.of(real, made, rule)
    # every right answer kept, the wrong one refused, every made-up name refused
    assert (o.answered, o.correct, o.wrong, o.made_up_refused) == (0.75, 0.75, 0.0, 1.0)
    assert rule.thresholds["line_mean"] <= 0.9 and 0.2 < rule.thresholds["span"] <= 0.7
    assert rule.answer_score == "span"  # what an answer is shown with; a one-score rule shows its one score
    assert AbstentionRule({"line_mean": 0.5}).answer_score == "line_mean"


def test_choose_rule_refuses_everything_when_no_threshold_meets_the_bounds():
    real = [_rec("Z", "A", line_mean=0.9, span=0.9), _rec("Y", "B", line_mean=0.9, span=0.9)]  # all wrong
    made = [_rec("Q", line_mean=0.95, span=0.95)]
    rule, info = choose_rule(real, made)
    assert not info["feasible"] and Outcome.of(real, made, rule).answered == 0.0


def test_risk_coverage_answers_the_most_confident_first():
    real = [_rec("A", "A", line_min=0.9), _rec("x", "B", line_min=0.8), _rec("B", "B", line_min=0.1)]
    c = risk_coverage(real, "line_min")
    assert c["coverage"] == [pytest.approx(1 / 3, abs=1e-4), pytest.approx(2 / 3, abs=1e-4), 1.0]
    assert c["risk"] == [0.0, 0.5, pytest.approx(1 / 3, abs=1e-4)]
    assert c["area"] == pytest.approx((0 + 0.5 + 1 / 3) / 3)


def test_made_up_names_come_from_training_names_and_occur_in_no_data_file():
    firsts = {n.split()[0] for n in training_names()}
    lasts = {n.split()[-1] for n in training_names()}
    files = [read_text(bundled_path(f)) for f in ("wiki.txt", "birth_places_train.tsv", "birth_dev.tsv",
                                                  "birth_test_inputs.tsv")]
    a, b = made_up_questions(200, 0), made_up_questions(200, 1, exclude=[q[10:-6] for q in made_up_questions(200, 0)])
    assert len(set(a)) == 200 and not set(a) & set(b)
    for q in a + b:
        name = q[len("Where was "):-len(" born?")]
        first, *_, last = name.split()
        assert first in firsts and last in lasts and len(name.split()) == 2
        assert not any(name in f for f in files)


def test_the_fast_span_scoring_picks_the_references_spans(answering, vocab):
    """best_spans (one prompt pass into a cache, shorter candidates read off longer ones) against
    best_spans_reference (every candidate a whole sequence): the same span, the same log-probability
    up to float rounding, and None in the same places."""
    from factgpt.checkpoint import load_model
    from factgpt.recite import best_spans, best_spans_reference

    model, _ = load_model(str(answering), vocab=vocab)
    qs = ["Where was Ann Lee born?", "Where was Bo born?", "Where was X Y Z born?"]
    recs = ["born in Paris, France, to a family", "a singer (born 1950) from Lyon .", ""]
    fast, ref = best_spans(model, vocab, qs, recs, batch_size=4), best_spans_reference(model, vocab, qs, recs)
    assert [f is None for f in fast] == [r is None for r in ref] == [False, False, True]
    for f, r in zip(fast[:2], ref[:2]):
        assert f[0] == r[0] and f[1] == pytest.approx(r[1], abs=1e-4)


def test_best_thresholds_takes_any_score_the_records_hold():
    """A benchmark's own score (not one of SCORES) gets thresholds the same way; one that cannot meet the
    bounds gets none."""
    from factgpt.abstention import best_thresholds

    real = [_rec("A", "A", line_mean=0.99, mine=0.9), _rec("Z", "B", line_mean=0.98, mine=0.1)]
    made = [_rec("Q", line_mean=0.1, mine=0.95)]
    th = best_thresholds(real, made, "line_mean", "mine")
    assert set(th) == {"line_mean", "mine"} and 0.1 < th["mine"] <= 0.9 and th["line_mean"] <= 0.98
    # a made-up name above every real person on both scores: no thresholds refuse it
    sure_fake = [_rec("Q", line_mean=0.995, mine=0.95)]
    assert best_thresholds(real, sure_fake, "line_mean", "mine") is None


def test_relative_answer_scores_rank_the_guess_among_its_lines_spans():
    """bench/answer_scores.py: the guess's share of all spans' probability and its lead over the runner-up,
    and nothing where the guess is not the best span."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("ans", Path(__file__).parents[1] / "bench" / "answer_scores.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lp = {"Paris": math.log(0.06), "France": math.log(0.02), "born": math.log(0.02)}
    got = mod.relative_scores(lp, "Paris")
    assert got["span_share"] == pytest.approx(0.6) and got["span_margin"] == pytest.approx(0.04)
    assert mod.relative_scores(lp, "France") is None and mod.relative_scores({}, "Paris") is None
    assert mod.relative_scores({"Paris": 0.0}, "Paris") == {"span_share": 1.0, "span_margin": 1.0}
