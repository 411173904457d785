"""The character vocabulary: PAD, MASK, then the corpus's sorted characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factgpt.datasets import CharCorruptionDataset, NameDataset
from factgpt.errors import InputError
from factgpt.vocab import MASK, PAD, Vocab

pytestmark = pytest.mark.usefixtures("single_thread")


def test_special_characters_are_the_documented_ones():
    assert PAD == "\u25a1" == "□"
    assert MASK == "\u2047" == "⁇"


def test_ids_pad_mask_then_sorted_corpus_characters(vocab, wiki_text):
    assert vocab.chars[0] == PAD and vocab.pad_id == 0 and vocab.stoi[PAD] == 0
    assert vocab.chars[1] == MASK and vocab.mask_id == 1 and vocab.stoi[MASK] == 1
    assert list(vocab.chars[2:]) == sorted(set(wiki_text))
    assert "\n" in vocab.chars
    assert len(vocab) == 2 + len(set(wiki_text))
    # ids are the positions
    assert all(vocab.stoi[c] == i for i, c in enumerate(vocab.chars))


def test_small_corpus_exact_ids():
    v = Vocab.from_corpus("ba\nab c\n")
    assert v.chars == (PAD, MASK, "\n", " ", "a", "b", "c")
    assert v.encode("cab\n") == [6, 4, 5, 2]


def test_vocab_constructor_refuses_bad_tables():
    with pytest.raises(ValueError):
        Vocab(("a", PAD, MASK))
    with pytest.raises(ValueError):
        Vocab((PAD, MASK, "a", "a"))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_encode_decode_round_trip(vocab, data):
    text = data.draw(st.text(alphabet=st.sampled_from(vocab.chars), max_size=200))
    ids = vocab.encode(text)
    assert all(0 <= i < len(vocab) for i in ids)
    assert len(ids) == len(text)
    assert vocab.decode(ids) == text
    assert vocab.decode(vocab.encode_tensor(text)) == text
    assert vocab.encode(vocab.decode(ids)) == ids


def test_unknown_character_raises_input_error_with_file_and_line(vocab):
    with pytest.raises(InputError) as ei:
        vocab.encode("Where was \u2603 born?", "questions.tsv", 7)
    e = ei.value
    assert not isinstance(e, KeyError)
    msg = str(e)
    assert msg.startswith("questions.tsv:7: ")
    assert "'\u2603'" in msg and "U+2603" in msg
    assert e.where == "questions.tsv" and e.line == 7


def test_unknown_character_in_corpus_names_its_line(vocab):
    text = "first line\nsecond line\nthird \u20ac line\n"
    with pytest.raises(InputError) as ei:
        CharCorruptionDataset(text, 128, vocab=vocab, where="corpus.txt")
    assert str(ei.value).startswith("corpus.txt:3: ")
    assert "\u20ac" in str(ei.value)


def test_unknown_character_in_tsv_names_its_line(vocab):
    tsv = "Where was Ann born?\tParis\nWhere was Bo\u2603b born?\tOslo\n"
    with pytest.raises(InputError) as ei:
        NameDataset(vocab, tsv, 128, where="train.tsv")
    assert str(ei.value).startswith("train.tsv:2: ")
    assert "\u2603" in str(ei.value)


@pytest.mark.parametrize("special", [PAD, MASK])
def test_corpus_with_reserved_character_is_refused(special):
    text = "fine\nalso fine\nnot " + special + " fine\n"
    with pytest.raises(InputError) as ei:
        Vocab.from_corpus(text, "corpus.txt")
    assert str(ei.value).startswith("corpus.txt:3: ")
    assert "reserved" in str(ei.value)
