"""`factgpt abstention` end to end: the rule chosen on the held-out slice and made-up names, reported on dev."""

import json

import pytest
import torch

from factgpt.checkpoint import save_model
from factgpt.cli import main
from factgpt.experiment import FORMATS, DataBundle


@pytest.fixture
def tiny_recite_model(tmp_path, vocab, make_model):
    """An untrained recite checkpoint: what it answers is noise, but every part of the command runs."""
    torch.manual_seed(0)
    model = make_model("vanilla", seed=2, n_layer=1, n_head=2, n_embd=32)
    data = DataBundle.load(model.config.block_size)
    path = tmp_path / "tiny_recite.safetensors"
    save_model(path, model, vocab, {"recipe": "tiny", "seed": 0, "max_chars": 40, "spec": {"recite": True},
                                    "heldout_questions": [r.question for r in data.heldout]})
    return path


@pytest.mark.slow
def test_abstention_chooses_on_heldout_and_reports_on_dev_and_answers_again_from_its_records(
        tiny_recite_model, tmp_path, capsys):
    out = tmp_path / "abstention"
    args = ["abstention", "--reading_params_path", str(tiny_recite_model), "--made_up", "20", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    res = json.loads((out / "abstention.json").read_text())
    assert res["format"] == FORMATS["abstention"] and res["command"].startswith("factgpt abstention")
    assert res["selection"]["n_real"] == 300 and res["selection"]["n_made_up"] == 20
    assert res["report"]["n_real"] == 500 and res["report"]["n_made_up"] == 20
    records = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
    parts = [r["part"] for r in records]
    assert [parts.count(p) for p in ("heldout", "select_made_up", "dev", "report_made_up")] == [300, 20, 500, 20]
    made_up = {r["question"] for r in records if "made_up" in r["part"]}
    assert len(made_up) == 40  # the two sets of made-up names share none
    assert (out / "risk_coverage.png").read_bytes()[:4] == b"\x89PNG"
    # the records alone choose and report the same rule, without decoding again
    again = tmp_path / "again"
    assert main([*args[:-2], "--out", str(again), "--answers", str(out / "answers.jsonl")]) == 0
    res2 = json.loads((again / "abstention.json").read_text())
    assert res2["rule"] == res["rule"] and res2["report"]["at_rule"] == res["report"]["at_rule"]
    assert res2["answers_decoded_by"] == {k: res[k] for k in ("command", "commit", "device")}
    assert res2["selection"]["confident_wrong"] == res["selection"]["confident_wrong"]


def test_abstention_refuses_a_model_that_does_not_recite(tmp_path, vocab, make_model, capsys):
    path = tmp_path / "plain.safetensors"
    save_model(path, make_model("vanilla", n_layer=1, n_head=2, n_embd=32), vocab, {})
    assert main(["abstention", "--reading_params_path", str(path), "--out", str(tmp_path / "a")]) == 2
    assert "not a recite model" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_most_correct_within_a_wrong_budget_reads_the_risk_coverage_curve():
    """Four answers ranked right, wrong, right, right: with 1 of 4 wrong allowed the whole ranking
    (3 right) is within it; with none allowed only the first (1 right); the area is untouched."""
    from factgpt.abstention import Record, risk_coverage
    from factgpt.tables import most_correct_within

    rows = [Record("dev", f"q{i}", "A", g, "", {"line_mean_x_span": s})
            for i, (g, s) in enumerate([("A", 0.9), ("B", 0.8), ("A", 0.7), ("A", 0.6)])]
    curve = risk_coverage(rows, "line_mean_x_span")
    assert most_correct_within(curve, 0.25) == pytest.approx(0.75)
    assert most_correct_within(curve, 0.0) == pytest.approx(0.25)
    wrong_first = risk_coverage([Record("dev", "q", "A", "B", "", {"line_mean_x_span": 1.0})], "line_mean_x_span")
    assert most_correct_within(wrong_first, 0.0) == 0.0


def test_the_candidates_table_puts_each_models_held_out_selection_beside_its_dev_report():
    """The shipped model's rule and a candidate's, side by side: held-out numbers (what decides) first."""
    from factgpt.tables import abstention_candidates_table

    def record(recipe: str, held: float, dev: float) -> dict:
        at = {"correct": held, "wrong": 0.02, "made_up_refused": 0.98}
        return {"recipe": recipe, "seed": 0, "rule": {"answer_score": "line_mean_x_span"},
                "selection": {"at_rule": at, "aurocs": {"line_mean_x_span": {"right_vs_wrong": 0.9}}},
                "report": {"at_rule": {**at, "correct": dev}}}

    shipped = {**record("a", 0.83, 0.85), "model": "recite (shipped)"}
    shipped["selection"]["confident_wrong"] = {"confidence_above": 0.9, "wrong": 35, "confident": 6}
    table = abstention_candidates_table([("shipped.json", shipped), ("b.json", record("b", 0.78, 0.77))])
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| `a` seed 0, shipped (`shipped.json`) | 83.0% / 2.0% | 98.0% | 0.900 "
                              "(`line_mean_x_span`) | 6 of 35 |")
    assert rows[1].startswith("| `b` seed 0 (`b.json`) | 78.0% / 2.0% |") and "| 77.0% / 2.0% | 98.0% |" in rows[1]
    assert "| not recorded |" in rows[1]  # a file from before the count was recorded
    assert abstention_candidates_table([]) == ""


def test_confident_wrong_counts_the_wrong_answers_shown_as_sure():
    from factgpt.abstention import Record, confident_wrong

    rows = [Record("heldout", f"q{i}", "A", g, "", {"line_mean_x_span": s})
            for i, (g, s) in enumerate([("A", 0.99), ("B", 0.95), ("C", 0.9), ("D", 0.2)])]
    # 0.9 itself is not above 0.9; the right answer at 0.99 is not counted
    assert confident_wrong(rows) == {"confidence_above": 0.9, "wrong": 3, "confident": 1}


def test_the_dev_table_says_where_the_answers_of_a_rule_chosen_again_were_decoded():
    from factgpt.tables import abstention_table

    at = {"answered": 0.9, "correct": 0.85, "wrong": 0.05, "made_up_refused": 0.99}
    a = {"recipe": "r", "seed": 0, "rule": {"thresholds": {"line_mean": 0.9}}, "device": "CPU B", "commit": "b" * 40,
         "selection": {"n_real": 300, "n_made_up": 500},
         "report": {"at_rule": at, "n_made_up": 500, "without_abstention": {"correct": 0.9}}}
    assert "decoded" not in abstention_table(a)
    a["answers_decoded_by"] = {"command": "factgpt abstention --out x", "device": "CPU A", "commit": "a" * 40}
    head = abstention_table(a).splitlines()[0]
    assert head.endswith("chosen again from the answers decoded by `factgpt abstention --out x` (CPU A, commit "
                         "`aaaaaaaaaaaa`)")
