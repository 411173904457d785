"""The held-out slice: fixed, disjoint from finetuning, and made of people the corpus knows."""

from __future__ import annotations

import pytest

from factgpt.datasets import parse_tsv
from factgpt.fileio import bundled_path, read_text
from factgpt.heldout import corpus_names, name_of, split_heldout, to_tsv


@pytest.fixture(scope="module")
def split():
    text = read_text(bundled_path("wiki.txt"))
    rows = parse_tsv(read_text(bundled_path("birth_places_train.tsv")), "train", True)
    dev = {r.question for r in parse_tsv(read_text(bundled_path("birth_dev.tsv")), "dev", True)}
    return text, rows, *split_heldout(rows, text, exclude=dev)


def test_sizes_and_disjoint(split):
    text, rows, train, held = split
    assert len(held) == 300 and len(train) == len(rows) - 300
    assert not {r.question for r in held} & {r.question for r in train}


def test_every_heldout_person_has_a_corpus_line(split):
    text, _, _, held = split
    names = corpus_names(text)
    assert all(name_of(r.question) in names for r in held)


def test_split_is_fixed_and_none_of_dev(split):
    text, rows, train, held = split
    dev = {r.question for r in parse_tsv(read_text(bundled_path("birth_dev.tsv")), "dev", True)}
    again = split_heldout(rows, text, exclude=dev)[1]
    assert [r.line for r in held] == [r.line for r in again]
    assert not dev & {r.question for r in held}
    # without the exclusion the one training person who is also in dev would be held out
    assert dev & {r.question for r in split_heldout(rows, text)[1]}


def test_to_tsv_round_trip(split):
    _, _, train, _ = split
    back = parse_tsv(to_tsv(train), "x", True)
    assert [(r.question, r.answer) for r in back] == [(r.question, r.answer) for r in train]


def test_too_few_eligible_pairs():
    rows = parse_tsv("Where was Nobody born?\tX\n", "x", True)
    with pytest.raises(ValueError, match="cannot hold out"):
        split_heldout(rows, "Somebody. Somebody was born.", n=1)
