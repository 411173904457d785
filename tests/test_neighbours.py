"""Hypothesis (c): nearest names by spelling and by the model's reading, and the test against chance;
the recite model's evidence (line diffs, closest real line)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from factgpt.analysis import evidence as V
from factgpt.analysis import neighbours as N
from factgpt.analysis.answers import Answer, model_view
from factgpt.config import DataSettings
from factgpt.datasets import QA
from factgpt.model import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("single_thread")


def plain_levenshtein(a: str, b: str) -> int:
    """The textbook dynamic programme, one cell at a time (the reference for the vectorised one)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


words = st.text(alphabet="abcdeé", max_size=9)


@settings(max_examples=200, deadline=None)
@given(words, st.lists(words, min_size=1, max_size=8))
def test_edit_distances_equal_the_plain_programme(query, candidates):
    got = N.edit_distances(query, candidates)
    assert got.tolist() == [plain_levenshtein(query, c) for c in candidates]


def test_nearest_by_spelling_sums_first_name_and_surname_and_keeps_ties():
    people = ["John Smith", "Jon Smith", "Joan Smyth", "Ann Lee", "Jon Smithe"]
    assert N.nearest_by_spelling(["Jon Smith"], people) == [[1]]
    assert N.nearest_by_spelling(["Jonn Smith"], people) == [[0, 1]]  # one edit each: a tie
    assert N.nearest_by_spelling(["Anne Mary Lee"], people) == [[3]]  # middle names do not count


def test_neighbour_test_chance_is_the_expectation_over_every_shuffle():
    places = ["Paris", "Rome", "Oslo", "Paris", "Rome"]
    nearest = [[0], [1, 2], [3], [4], [0, 1]]
    answers = ["Paris", "Rome", "Paris", "Oslo", "Rome"]
    t = N.neighbour_test(answers, nearest, places, seed=0, resamples=500)
    hits = [1.0, 0.5, 1.0, 0.0, 0.5]
    assert t["observed"] == pytest.approx(np.mean(hits))
    exact = np.mean([np.mean([sum(places[j] == a for j in near) / len(near) for a, near in zip(perm, nearest)])
                     for perm in itertools.permutations(answers)])
    assert t["chance"] == pytest.approx(exact)
    lo, hi = t["observed_ci95"]
    assert lo <= t["observed"] <= hi and 0 < t["p_value"] <= 1


def test_neighbour_test_finds_a_model_that_copies_the_nearest_and_not_one_that_does_not():
    rng = np.random.default_rng(0)
    places = [f"P{i % 40}" for i in range(400)]
    nearest = [[int(j)] for j in rng.integers(0, 400, 300)]
    copier = [places[n[0]] for n in nearest]
    t = N.neighbour_test(copier, nearest, places, seed=1, resamples=300)
    assert t["observed"] == 1.0 and t["chance"] < 0.05 and t["p_value"] < 0.01
    assert N.verdict(t).startswith("supported")
    guesser = [places[int(j)] for j in rng.integers(0, 400, 300)]  # answers unrelated to the names
    g = N.neighbour_test(guesser, nearest, places, seed=1, resamples=300)
    assert g["p_value"] > 0.01 and N.verdict(g).startswith("not supported")


def test_name_state_is_read_at_the_names_last_character(vocab):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(vocab), n_layer=1, n_head=2, n_embd=32))
    names = ["Ann Lee", "Bartholomew Aloysius Kingsley"]
    got = N.name_states(model, vocab, names)
    for name, row in zip(names, got):
        # causal attention: the state at the name's end depends only on "Where was NAME"
        grabbed = []
        h = model.ln_f.register_forward_hook(lambda _m, _i, o: grabbed.append(o))
        model(torch.tensor([vocab.encode(f"Where was {name}")]))
        h.remove()
        want = grabbed[0][0, -1]
        assert torch.allclose(row, want / want.norm(), atol=1e-5)
    near = N.nearest_by_state(model, vocab, names, names)
    assert near == [[0], [1]]  # each name is nearest to itself


def test_char_diff_rebuilds_both_lines():
    a, b = "born in Paris, France . He", "born in Lyon, France . She"
    ops = V.char_diff(a, b)
    assert "".join(x for _, x, _ in ops) == a and "".join(y for _, _, y in ops) == b
    assert {op for op, _, _ in ops} <= {"equal", "replace", "delete", "insert"}
    assert V.closest_line("born in Lyon", ["died in Rome", "born in Lyons", ""]) == (1, pytest.approx(24 / 25))
    assert V.closest_line("", []) == (-1, 0.0)


def test_recite_evidence_counts_and_examples():
    lines = {"Ann Lee": "Where was Ann Lee born? born in Oslo . She paints",
             "Bo Dahl": "Where was Bo Dahl born? born in Rome . He sings",
             "Cy Fox": "Where was Cy Fox born? a writer . born in Lima"}
    rows = [QA("Where was Ann Lee born?", "Oslo", 1), QA("Where was Bo Dahl born?", "Rome", 2),
            QA("Where was Cy Fox born?", "Lima", 3)]
    dev = [Answer("Oslo", 0.9, 0.99, True, "born in Oslo . She paints"),
           Answer("sings", 0.4, 0.99, False, "born in Rome . He sings"),  # another piece copied
           Answer("Lim", 0.2, 0.5, False, "a writer . born in")]  # the cut line lost it
    unseen = [Answer("Oslo", 0.1, 0.6, False, "born in Oslo . She paint"), Answer("x", 0.0, 0.1, False, "qqq")]
    ev = V.recite_evidence(rows, dev, ["Anna Lee", "Zed Q"], unseen, lines, seed=0, k=5,
                           nearest_people=[["Ann Lee"], ["Bo Dahl"]])
    assert ev["errors"] == {"correct": 1, "answer_not_in_line": 0, "line_not_recited": 1, "copied_another_span": 1,
                            "garbled_copy": 0}
    assert [x["question"] for x in ev["correct"]] == ["Where was Ann Lee born?"]
    assert ev["correct"][0]["real"] == "born in Oslo . She paints"  # the line without its question key
    assert ev["made_up_reciting_a_real_line"] == 1 and ev["made_up_reciting_a_nearest_persons_line"] == 1
    first = next(x for x in ev["made_up"] if x["name"] == "Anna Lee")
    assert first["real_person"] == "Ann Lee" and first["ratio"] > 0.9


def test_model_view_from_metadata():
    recite = model_view({"spec": {"recite": True, "birth_front": True, "question_key": True}, "max_chars": 80,
                         "abstention": {"thresholds": {"line_mean": 0.9, "line_mean_x_span": 0.5}}})
    assert recite.kind == "recite" and recite.cut == 80 and recite.data.question_key and recite.data.birth_front
    assert recite.rule is not None and recite.rule.thresholds == {"line_mean": 0.9, "line_mean_x_span": 0.5}
    # a recipe's line changes are all kept (dates out, the place-naming clause first), the recipe's own cut wins
    placed = model_view({"spec": {"recite": True}, "max_chars": 96, "data": {"drop_dates": True, "birth_front": True,
                                                                             "birth_placed": True, "max_chars": 96}})
    assert placed.data == DataSettings(drop_dates=True, birth_front=True, birth_placed=True, max_chars=96)
    assert placed.describe() == "dates out, the place-naming birth clause first; first 96 characters"
    quick = model_view({"shipped_from": {"profile": "quick"}})
    assert quick.kind == "course" and quick.cut == 80 and quick.rule is None and not quick.data.birth_front
    assert model_view({"shipped_from": {"profile": "laptop"}}).data.birth_front
    # the lines a checkpoint recorded win over the profile it names, whose settings may have changed since
    assert not model_view({"shipped_from": {"profile": "laptop"}, "data": {"max_chars": 80}}).data.birth_front
    assert model_view({}).cut == 112 and model_view({}, "course").cut == 112
