"""The models shipped inside the package behave like the runs they come from.

"recite" (the default) is one seed of a course-architecture (track A) recipe, trained
without the held-out slice (its metadata names the recipe's results folder and seed); "quick" is
the quick profile's seed-0 vanilla model. Evaluating dev with either must give
exactly the predictions its run committed, and the recite model's abstention
rule must refuse a made-up name and answer a person it has a line for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factgpt.analysis.answers import model_view
from factgpt.checkpoint import load_tensors
from factgpt.cli import main
from factgpt.datasets import parse_tsv
from factgpt.fileio import bundled_path, read_text, shipped_model
from factgpt.grounded import AbstentionRule
from factgpt.heldout import split_heldout

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "results" / "quick"


@pytest.fixture(scope="module")
def recite_model() -> Path:
    p = shipped_model("recite")
    assert p is not None, "the package ships no recite model (factgpt/weights/recite.safetensors)"
    return p


def _recipe_folder(model: Path) -> Path:
    """The results folder of the recipe run the shipped model comes from (its metadata says which)."""
    return ROOT / Path(load_tensors(model)[1]["shipped_from"]["results"]).parent


def _answer_score(model: Path) -> str:
    """The score the shipped rule shows an answer with."""
    return AbstentionRule.from_meta(load_tensors(model)[1]).answer_score


def test_the_recite_model_is_small_described_and_never_saw_the_held_out_questions(recite_model):
    assert recite_model.stat().st_size <= 16 * 2**20
    tensors, meta = load_tensors(recite_model)
    cfg = meta["config"]
    assert (cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["block_size"]) == (4, 8, 256, 128)  # track A
    results = json.loads((_recipe_folder(recite_model) / "results.json").read_text(encoding="utf-8"))
    origin = meta["shipped_from"]
    assert origin["recipe"] == results["recipe"] and results["track"] == "A"
    assert origin["seed"] in [r["seed"] for r in results["runs"]]
    assert origin["commit"] == results["commit"] and meta["spec"]["recite"]
    assert meta["max_chars"] == results["settings"]["data"]["max_chars"]
    rows = parse_tsv(read_text(bundled_path("birth_places_train.tsv")), "train", True)
    dev = parse_tsv(read_text(bundled_path("birth_dev.tsv")), "dev", True)
    _, held = split_heldout(rows, read_text(bundled_path("wiki.txt")), exclude={r.question for r in dev})
    assert meta["heldout_questions"] == [r.question for r in held]
    rule = meta["abstention"]
    abst = json.loads((ROOT / "results" / "abstention" / "abstention.json").read_text(encoding="utf-8"))
    assert rule["thresholds"] == abst["rule"]["thresholds"]


@pytest.mark.golden
@pytest.mark.slow
def test_evaluate_with_the_recite_model_reproduces_the_committed_dev_predictions(recite_model, tmp_path, capsys):
    out = tmp_path / "dev.predictions"
    assert main(["evaluate", "vanilla", "--outputs_path", str(out)]) == 0
    recipe, seed = _recipe_folder(recite_model), load_tensors(recite_model)[1]["shipped_from"]["seed"]
    committed = (recipe / f"seed{seed}" / "dev.predictions.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert out.read_text(encoding="utf-8").splitlines() == [line.split("\t")[2] for line in committed]
    run = next(r for r in json.loads((recipe / "results.json").read_text(encoding="utf-8"))["runs"] if r["seed"] == seed)
    assert f"Correct: {run['dev']['correct']} out of 500:" in capsys.readouterr().out


def test_the_recite_model_refuses_a_made_up_name_and_answers_a_training_person(recite_model, capsys):
    assert main(["ask", "Where was Zorblax Quimby born?", "--json"]) == 0
    made_up = json.loads(capsys.readouterr().out)
    assert made_up["answer"] is None and made_up["recited_line"] is not None
    assert main(["ask", "Where was Khatchig Mouradian born?", "--json"]) == 0  # the first training person
    known = json.loads(capsys.readouterr().out)
    assert known["answer"] == "Lebanon" and "Khatchig Mouradian" in known["question"]
    # each shows the score that decided, against its threshold: the refusal the line score, the answer its own
    assert made_up["refused_for"] == "no_line" and made_up["confidence_score"] == "line_mean"
    assert made_up["confidence"] == made_up["line_confidence"] < made_up["threshold"]
    assert known["confidence_score"] == _answer_score(recite_model) and known["confidence"] >= known["threshold"]
    assert known["line_confidence"] > made_up["line_confidence"]
    assert main(["ask", "Where was Khatchig Mouradian born?"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Lebanon\t(confidence {_answer_score(recite_model)} ") and "recited: " in text


def test_the_recite_model_reads_questions_as_people_type_them(recite_model, capsys, monkeypatch):
    """A bare name, other phrasings and any case of the fixed words are the course's question; a bad line
    gets an error object in its place, the others are answered, and the command exits 2 at the end."""
    import io

    lines = ["Khatchig Mouradian", "where was Khatchig Mouradian born", "Where is Khatchig Mouradian from?",
             "Khatchig Mouradian's birthplace", "???", "khatchig mouradian"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["ask", "--json"]) == 2
    captured = capsys.readouterr()
    got = [json.loads(x) for x in captured.out.splitlines()]
    assert [g.get("form") for g in got] == ["name", "where_was_born", "where_from", "birthplace", None, "name"]
    assert [g["asked"] for g in got] == [x.strip() for x in lines]
    assert all(g["answer"] == "Lebanon" for g in got[:4])
    assert got[4]["error"].startswith("<stdin>:5: ") and "<stdin>:5: " in captured.err
    # lower case is another string to a character model: it is asked as typed, and this model has no line for it
    assert got[5]["question"] == "Where was khatchig mouradian born?" and got[5]["answer"] is None


@pytest.mark.slow
def test_the_quick_model_is_shipped_by_name_and_reproduces_its_study(tmp_path, capsys):
    p = shipped_model("quick")
    assert p is not None and p.stat().st_size <= 16 * 2**20
    _, meta = load_tensors(p)
    results = json.loads((QUICK / "results.json").read_text(encoding="utf-8"))
    # run when the quick profile was still called laptop (the model records that name, the results both)
    assert results["profile"] == "quick" and results["recorded_as"]["profile"] == "laptop"
    assert (meta["shipped_from"]["profile"], meta["shipped_from"]["seed"]) == (results["recorded_as"]["profile"], 0)
    assert meta["shipped_from"]["commit"] == results["commit"]
    assert meta["data"] == results["profile_settings"]["data"] and not model_view(meta).data.birth_front
    seed0 = next(r for r in results["rows"]["vanilla_pretrain"]["runs"] if r["seed"] == 0)
    out = tmp_path / "dev.predictions"
    assert main(["evaluate", "vanilla", "--reading_params_path", "quick", "--outputs_path", str(out)]) == 0
    committed = (QUICK / "seed0" / "vanilla_pretrain.dev.predictions").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed
    assert f"Correct: {seed0['correct']} out of {seed0['total']}:" in capsys.readouterr().out
    assert main(["ask", "Where was Ralf Wadephul born?", "--reading_params_path", "quick"]) == 0
    answer, info = capsys.readouterr().out.rstrip("\n").split("\t")
    assert answer and info.startswith("(probability ")


def test_pruned_span_scoring_gives_the_unpruned_answers_of_a_trained_model(recite_model):
    """best_spans skips a carrier whose first character is already less likely than the best span
    found; with a trained model (whose distributions are far from flat, unlike a random test
    model's) that must skip most carriers and change no answer and no score."""
    import torch

    from factgpt.checkpoint import load_model
    from factgpt.abstention import made_up_questions
    from factgpt.pipeline import load_corpus
    from factgpt.recite import best_spans, recite

    vocab = load_corpus(bundled_path("wiki.txt")).vocab
    model, meta = load_model(str(recite_model), vocab=vocab, device=torch.device("cpu"))
    dev = [r.question for r in parse_tsv(read_text(bundled_path("birth_dev.tsv")), "birth_dev.tsv", True)[:24]]
    qs = dev + made_up_questions(8, 0)
    recs = [r.line.text for r in recite(model, vocab, qs, meta["max_chars"], answers=False)]
    pruned, full = {}, {}
    fast = best_spans(model, vocab, qs, recs, batch_size=64, stats=pruned)
    slow = best_spans(model, vocab, qs, recs, batch_size=64, prune=False, stats=full)
    assert [f is None for f in fast] == [s is None for s in slow]
    for f, s in zip(fast, slow):
        if f is not None:
            assert f[0] == s[0] and f[1] == pytest.approx(s[1], abs=1e-5)
    assert pruned["rows"] + pruned["pruned"] == full["rows"] and pruned["pruned"] > full["rows"] / 2
