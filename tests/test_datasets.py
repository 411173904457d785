"""The reference datasets: span corruption for pretraining, question/answer for finetuning."""

from __future__ import annotations

import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from factgpt.datasets import CharCorruptionDataset, NameDataset, corrupt, corruption_lengths, documents, parse_tsv
from factgpt.errors import InputError
from factgpt.vocab import MASK, PAD

pytestmark = pytest.mark.usefixtures("single_thread")

PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)
# Lines of printable text, short ones (< 4 characters) included.
DOCS = st.lists(st.text(alphabet=PRINTABLE, min_size=1, max_size=300), min_size=1, max_size=8)


# ---- CharCorruptionDataset ---------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(docs=DOCS, block_size=st.sampled_from([16, 32, 64, 128]), seed=st.integers(0, 2**32 - 1))
def test_corruption_example_properties(docs, block_size, seed, check_corruption):
    text = "\n".join(docs) + "\n"
    ds = CharCorruptionDataset(text, block_size, seed=seed)
    assert ds.docs == docs and len(ds) == len(docs)
    for idx in range(len(ds)):
        for _ in range(3):
            x, y = ds[idx]
            assert x.shape == y.shape == (block_size - 1,)
            assert x.dtype == y.dtype == torch.long
            s = torch.cat([x, y[-1:]])
            assert torch.equal(x, s[:-1]) and torch.equal(y, s[1:])
            assert torch.equal(x[1:], y[:-1])
            trunc, _, _ = check_corruption(s.tolist(), docs[idx], ds.vocab, block_size)
            # the string is exactly prefix ⁇ suffix ⁇ masked, then pads
            assert int((s != 0).sum()) == trunc + 2
            assert int((s == ds.vocab.mask_id).sum()) == 2


def test_empty_lines_are_skipped():
    text = "\n\nfirst document\n\n\nsecond\n\n"
    assert documents(text) == ["first document", "second"]
    ds = CharCorruptionDataset(text, 32, seed=0)
    assert len(ds) == 2 and ds.docs == ["first document", "second"]
    with pytest.raises(InputError):
        CharCorruptionDataset("\n\n\n", 32, where="empty.txt")


def test_short_documents_are_kept_whole():
    ds = CharCorruptionDataset("ab\nxyz\nq\n", 32, seed=0)
    for idx, doc in enumerate(ds.docs):
        for _ in range(20):
            x, y = ds[idx]
            s = ds.vocab.decode(torch.cat([x, y[-1:]]).tolist()).rstrip(PAD)
            prefix, suffix, masked = s.split(MASK)
            assert prefix + masked + suffix == doc  # a document shorter than 4 is shown whole
            assert len(masked) == 1


def _draws(ds: CharCorruptionDataset, idx: int, n: int) -> list[tuple[int, int]]:
    out = []
    for _ in range(n):
        x, y = ds[idx]
        s = ds.vocab.decode(torch.cat([x, y[-1:]]).tolist()).rstrip(PAD)
        prefix, suffix, masked = s.split(MASK)
        out.append((len(prefix) + len(suffix) + len(masked), len(masked)))
    return out


def test_corruption_statistics_on_long_documents():
    long_doc = "".join(chr(33 + (i * 7) % 90) for i in range(300))
    ds = CharCorruptionDataset(long_doc + "\n", 128, seed=123)
    draws = _draws(ds, 0, 20000)
    truncs = [t for t, _ in draws]
    masks = [m for _, m in draws]
    assert set(truncs) == set(range(4, 113))  # uniform on [4, int(128*7/8)]
    assert abs(statistics.fmean(truncs) - (4 + 112) / 2) < 1.5
    assert len(set(masks)) > 40
    ratio = statistics.fmean(m / t for t, m in draws)
    assert abs(ratio - 0.25) < 0.04
    # short and long spans both occur
    assert min(masks) == 1 and max(masks) >= 50  # the longest possible is 112 // 2 - 1 = 55
    assert max(masks) <= 55


def test_corruption_lengths_reference_distribution():
    import random

    rng = random.Random(5)
    for doc_len in (1, 2, 3, 4, 5, 50, 112, 113, 500):
        for _ in range(300):
            trunc, start, mask_len = corruption_lengths(doc_len, 128, rng)
            assert min(4, doc_len) <= trunc <= min(doc_len, 112)
            assert 1 <= mask_len <= max(1, trunc // 2 - 1) and mask_len <= trunc
            assert 0 <= start <= trunc - mask_len


def test_corrupt_layout():
    s = corrupt("abcdefghij", 8, 2, 3, 16)
    assert s == "ab" + MASK + "fgh" + MASK + "cde" + PAD * 6
    assert len(s) == 16


def test_seeded_dataset_is_reproducible(wiki_text, vocab):
    text = "\n".join(wiki_text.split("\n")[:50])
    a = CharCorruptionDataset(text, 128, vocab, seed=7)
    b = CharCorruptionDataset(text, 128, vocab, seed=7)
    c = CharCorruptionDataset(text, 128, vocab, seed=8)
    xa = [a[i][0] for i in range(50)]
    xb = [b[i][0] for i in range(50)]
    xc = [c[i][0] for i in range(50)]
    assert all(torch.equal(p, q) for p, q in zip(xa, xb))
    assert not all(torch.equal(p, q) for p, q in zip(xa, xc))
    # and draws differ from one read of an item to the next
    assert not all(torch.equal(a[0][0], a[0][0]) for _ in range(10))


# ---- NameDataset ------------------------------------------------------------------------------
def _expected_xy(vocab, q: str, a: str, block_size: int):
    s = (q + MASK + a + MASK).ljust(block_size, PAD)
    ids = vocab.encode(s)
    x, y = ids[:-1], ids[1:]
    y = [0] * (len(q) - 1) + y[len(q) - 1 :]
    return x, y


def test_name_dataset_examples(vocab, train_tsv_text):
    ds = NameDataset(vocab, train_tsv_text, 128, where="train.tsv")
    assert len(ds) == 2000
    rows = [line.split("\t") for line in train_tsv_text.split("\n") if line]
    for i in list(range(40)) + [132]:
        q, a = rows[i]
        x, y = ds[i]
        assert x.shape == y.shape == (127,)
        assert vocab.decode(x.tolist()) == (q + MASK + a + MASK).ljust(127, PAD)
        ex, ey = _expected_xy(vocab, q, a, 128)
        assert x.tolist() == ex and y.tolist() == ey
        # no loss inside the question; the first target is the ⁇ after it
        assert (y[: len(q) - 1] == 0).all()
        assert int(y[len(q) - 1]) == vocab.mask_id
        assert vocab.decode(y[len(q) - 1 :].tolist()).rstrip(PAD) == MASK + a + MASK
        assert int((y != 0).sum()) == len(a) + 2


def test_name_dataset_keeps_non_ascii_letters(vocab, train_tsv_text):
    ds = NameDataset(vocab, train_tsv_text, 128)
    q = "Where was Jos\u00e9 B\u00e9naz\u00e9raf born?"  # line 133 of the training file
    i = next(i for i, r in enumerate(ds.rows) if r.question == q)
    assert ds.rows[i].line == 133 and ds.rows[i].answer == "Casablanca"
    x, _ = ds[i]
    decoded = vocab.decode(x.tolist())
    assert decoded.startswith(q + MASK)
    assert decoded.count("\u00e9") >= q.count("\u00e9") >= 1


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_name_dataset_property(vocab, data):
    alphabet = st.sampled_from([c for c in vocab.chars[2:] if c not in "\t\r\n"])
    q = data.draw(st.text(alphabet, min_size=1, max_size=60).filter(str.strip), label="question")
    a = data.draw(st.text(alphabet, min_size=1, max_size=40).filter(str.strip), label="answer")
    ds = NameDataset(vocab, f"{q}\t{a}\n", 128)
    assert ds.rows[0].question == q and ds.rows[0].answer == a
    x, y = ds[0]
    ex, ey = _expected_xy(vocab, q, a, 128)
    assert x.tolist() == ex and y.tolist() == ey


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("Where was A born?\tParis\nWhere was B born?\n", 2, "no tab"),
        ("Where was A born?\tParis\n\n\nWhere was B born? Rome\n", 4, "no tab"),
        ("Where was A born?\tParis\n\tRome\n", 2, "empty question"),
        ("Where was A born?\tParis\n   \tRome\n", 2, "empty question"),
        ("Where was A born?\tParis\nWhere was B born?\t\n", 2, "empty answer"),
        ("Where was A born?\tParis\nWhere was B born?\t  \n", 2, "empty answer"),
        ("Where was A born?\tParis\tFrance\n", 1, "more than one tab"),
    ],
)
def test_parse_tsv_errors_name_the_line(text, line, what):
    with pytest.raises(InputError) as ei:
        parse_tsv(text, "data.tsv", need_answers=True)
    assert ei.value.line == line
    assert str(ei.value).startswith(f"data.tsv:{line}: ")
    assert what in str(ei.value)


def test_parse_tsv_questions_only_and_mixed():
    rows = parse_tsv("Where was A born?\r\nWhere was B born?\n", "t.tsv", need_answers=False)
    assert [(r.question, r.answer, r.line) for r in rows] == [("Where was A born?", None, 1), ("Where was B born?", None, 2)]
    with pytest.raises(InputError) as ei:
        parse_tsv("Where was A born?\tParis\nWhere was B born?\n", "t.tsv", need_answers=False)
    assert ei.value.line == 2
    with pytest.raises(InputError):
        parse_tsv("\n  \n", "t.tsv", need_answers=False)


def test_name_dataset_refuses_examples_longer_than_the_block(vocab):
    q, a = "Where was " + "a" * 100 + " born?", "b" * 20  # 116 + 20 + 2 > 128
    with pytest.raises(InputError) as ei:
        NameDataset(vocab, f"Where was A born?\tParis\n{q}\t{a}\n", 128, where="long.tsv")
    assert str(ei.value).startswith("long.tsv:2: ")
    assert "block size" in str(ei.value)
    # exactly block_size characters still fit (the last ⁇ is only a target)
    q2 = "Q" * 100
    a2 = "A" * 26
    ds = NameDataset(vocab, f"{q2}\t{a2}\n", 128)
    x, y = ds[0]
    assert int(y[-1]) == vocab.mask_id and int(x[-1]) == vocab.stoi["A"]
