"""Fast batches (batches.py) against the reference datasets, and packing."""

from __future__ import annotations

import random
import statistics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import unpack
from factgpt.batches import Batch, BatchedCorruption, TensorExamples, example_lengths, pack
from factgpt.datasets import NameDataset, corrupt, corruption_lengths, documents
from factgpt.fileio import bundled_path, read_text

pytestmark = pytest.mark.usefixtures("single_thread")

BS = 128


@pytest.fixture(scope="module")
def wiki():
    return read_text(bundled_path("wiki.txt"))


@pytest.fixture(scope="module")
def corruption(wiki, vocab):
    return BatchedCorruption(wiki, vocab, BS)


@pytest.fixture(scope="module")
def qa_examples(vocab, train_tsv_text):
    return TensorExamples(NameDataset(vocab, train_tsv_text, BS))


def test_build_equals_reference_corrupt(corruption, wiki, vocab):
    docs = documents(wiki)
    assert len(corruption) == len(docs) == 2937
    gen = torch.Generator().manual_seed(0)
    n = 0
    for batch_no, start_at in enumerate(range(0, len(docs), 300)):
        idx = torch.arange(start_at, min(start_at + 300, len(docs)))
        if batch_no % 2:
            idx = idx[torch.randperm(len(idx), generator=gen)]
        trunc, start, mask_len = corruption.draw(idx, gen)
        built = corruption.build(idx, trunc, start, mask_len)
        assert built.shape == (len(idx), BS)
        for row, i in enumerate(idx.tolist()):
            ref = corrupt(docs[i], int(trunc[row]), int(start[row]), int(mask_len[row]), BS)
            assert built[row].tolist() == vocab.encode(ref), f"document {i}"
            n += 1
    assert n == len(docs)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_build_equals_corrupt_for_any_valid_draw(vocab, data):
    """Edge draws too: mask at the very start or end, documents shorter than 4, mask_len == trunc."""
    alphabet = st.sampled_from([c for c in vocab.chars[2:] if c != "\n"])
    docs = data.draw(st.lists(st.text(alphabet, min_size=1, max_size=150), min_size=1, max_size=5))
    bs = data.draw(st.sampled_from([16, 64, 128]))
    bc = BatchedCorruption("\n".join(docs), vocab, bs)
    rows = []
    for i, d in enumerate(docs):
        trunc = data.draw(st.integers(1, min(len(d), int(bs * 7 / 8))))
        mask_len = data.draw(st.integers(1, trunc))
        start = data.draw(st.integers(0, trunc - mask_len))
        rows.append((i, trunc, start, mask_len))
    idx, trunc, start, mask_len = (torch.tensor(c) for c in zip(*rows))
    built = bc.build(idx, trunc, start, mask_len)
    for row, (i, t, s, m) in enumerate(rows):
        assert built[row].tolist() == vocab.encode(corrupt(docs[i], t, s, m, bs))


def test_draw_matches_reference_distribution(corruption, wiki):
    docs = documents(wiki)
    n = 20000
    pick = random.Random(0)
    idx = [pick.randrange(len(docs)) for _ in range(n)]
    rng = random.Random(1)
    ref = [corruption_lengths(len(docs[i]), BS, rng) for i in idx]
    gen = torch.Generator().manual_seed(2)
    t, s, m = corruption.draw(torch.tensor(idx), gen)
    fast = list(zip(t.tolist(), s.tolist(), m.tolist()))

    def stats(draws):
        tr = [d[0] for d in draws]
        ml = [d[2] for d in draws]
        rel = [d[1] / max(1, d[0] - d[2]) for d in draws]
        return statistics.fmean(tr), statistics.fmean(ml), statistics.fmean(rel), set(tr)

    rt, rm, rs, rset = stats(ref)
    ft, fm, fs, fset = stats(fast)
    assert abs(rt - ft) < 1.5
    assert abs(rm - fm) < 0.5
    assert abs(rs - fs) < 0.02 and abs(fs - 0.5) < 0.02
    assert set(range(4, 113)) <= rset and set(range(4, 113)) <= fset
    assert max(fset) == max(rset) == 112 and min(fset) == min(rset) == 4
    # every fast draw is a valid draw of the reference distribution
    for (tt, ss, mm), i in zip(fast, idx):
        assert min(4, len(docs[i])) <= tt <= min(len(docs[i]), 112)
        assert 1 <= mm <= max(1, tt // 2 - 1)
        assert 0 <= ss <= tt - mm


def test_batched_examples_satisfy_the_dataset_properties(corruption, wiki, vocab, check_corruption):
    docs = documents(wiki)
    gen = torch.Generator().manual_seed(3)
    seen = 0
    for b in corruption.epoch(256, gen, shuffle=False):
        assert b.x.shape == b.y.shape == (b.n_examples, BS - 1)
        assert torch.equal(b.x[:, 1:], b.y[:, :-1])
        for r in range(b.n_examples):
            s = torch.cat([b.x[r], b.y[r, -1:]]).tolist()
            check_corruption(s, docs[seen + r], vocab, BS)
        seen += b.n_examples
    assert seen == len(docs)


def test_epoch_order(corruption):
    gen = torch.Generator().manual_seed(0)
    sizes = [b.n_examples for b in corruption.epoch(128, gen)]
    assert sizes == [128] * 22 + [2937 - 22 * 128]


# ---- packing -------------------------------------------------------------------------------
def _check_packing(batch: Batch, capacity: int | None = None):
    packed = pack(batch, capacity)
    cap = capacity or batch.x.shape[1]
    lens = example_lengths(batch.y).tolist()
    assert packed.n_examples == batch.n_examples
    assert packed.x.shape == packed.y.shape == packed.pos.shape == packed.seg.shape
    assert packed.x.shape[1] <= cap
    assert packed.x.shape[0] < batch.n_examples
    for i, n in enumerate(lens):
        assert torch.equal(unpack(packed, packed.x, i), batch.x[i, :n])
        assert torch.equal(unpack(packed, packed.y, i), batch.y[i, :n])
        assert (batch.y[i, n:] == 0).all()  # nothing with a loss was dropped
        assert torch.equal(unpack(packed, packed.pos, i), torch.arange(n))
        # one contiguous run in one row
        rows, cols = (packed.seg == i).nonzero(as_tuple=True)
        assert len(set(rows.tolist())) == 1
        assert torch.equal(cols, torch.arange(int(cols[0]), int(cols[0]) + n))
    # segments never overlap: every cell belongs to at most one example, and padding is -1 / PAD
    assert int((packed.seg >= 0).sum()) == sum(lens)
    pad = packed.seg == -1
    assert (packed.x[pad] == 0).all() and (packed.y[pad] == 0).all()
    assert ((packed.seg >= 0).sum(dim=1) <= cap).all()
    assert packed.real_tokens() == batch.real_tokens()
    return packed


def test_pack_pretraining_batches(corruption):
    gen = torch.Generator().manual_seed(4)
    for k, b in enumerate(corruption.epoch(128, gen, shuffle=True)):
        packed = _check_packing(b)
        assert packed.x.shape[0] <= 0.75 * b.n_examples  # about half of a pretraining batch is padding
        if k == 3:
            break


def test_pack_finetuning_batches_and_capacity(qa_examples):
    gen = torch.Generator().manual_seed(5)
    for k, b in enumerate(qa_examples.epoch(64, gen, shuffle=True)):
        _check_packing(b)
        _check_packing(b, capacity=200)
        if k == 2:
            break


def test_pack_hand_made_batch():
    y = torch.tensor([[0, 0, 5, 6, 0, 0], [0, 7, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8], [0, 0, 0, 9, 0, 0]])
    x = torch.arange(1, 25).view(4, 6)
    b = Batch(x, y, 4)
    assert example_lengths(y).tolist() == [4, 2, 6, 4]
    packed = _check_packing(b)
    assert packed.x.shape == (3, 6)  # 6 | 4 2 | 4


@settings(max_examples=50, deadline=None)
@given(lens=st.lists(st.integers(1, 31), min_size=2, max_size=12), cap_extra=st.integers(0, 20))
def test_pack_property(lens, cap_extra):
    T = 31
    n = len(lens)
    x = torch.randint(2, 50, (n, T))
    y = torch.zeros(n, T, dtype=torch.long)
    for i, L in enumerate(lens):
        y[i, :L] = torch.randint(1, 50, (L,))
    b = Batch(x, y, n)
    packed = pack(b, T + cap_extra)
    lens_t = example_lengths(y).tolist()
    assert lens_t == lens
    assert packed.x.shape[0] <= n and packed.x.shape[1] <= T + cap_extra
    for i, L in enumerate(lens):
        assert torch.equal(unpack(packed, packed.x, i), x[i, :L])
        assert torch.equal(unpack(packed, packed.pos, i), torch.arange(L))
    assert packed.real_tokens() == b.real_tokens()


# ---- TensorExamples ----------------------------------------------------------------------------
def test_tensor_examples_order(vocab, train_tsv_text, qa_examples):
    ds = NameDataset(vocab, train_tsv_text, BS)
    gen = torch.Generator().manual_seed(0)
    xs = torch.cat([b.x for b in qa_examples.epoch(300, gen, shuffle=False)])
    ys = torch.cat([b.y for b in qa_examples.epoch(300, gen, shuffle=False)])
    assert torch.equal(xs, torch.stack([ds[i][0] for i in range(len(ds))]))
    assert torch.equal(ys, torch.stack([ds[i][1] for i in range(len(ds))]))
    batches = list(qa_examples.epoch(300, gen, shuffle=True))
    assert [b.n_examples for b in batches] == [300] * 6 + [200]
    sx = torch.cat([b.x for b in batches])
    assert not torch.equal(sx, xs)
    # a permutation of the rows: map each shuffled row back to its original index
    where = {tuple(r): i for i, r in enumerate(xs.tolist())}
    assert len(where) == len(xs)  # the training questions are all distinct
    perm = [where[tuple(r)] for r in sx.tolist()]
    assert sorted(perm) == list(range(len(xs)))
    sy = torch.cat([b.y for b in batches])
    assert torch.equal(sy, ys[perm])
    # shuffles differ from epoch to epoch
    again = torch.cat([b.x for b in qa_examples.epoch(300, gen, shuffle=True)])
    assert not torch.equal(again, sx)


def test_max_chars_cuts_every_line_to_its_prefix():
    from factgpt.datasets import documents
    from factgpt.fileio import bundled_path, read_text
    from factgpt.vocab import Vocab

    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    bc = BatchedCorruption(text, vocab, 128, max_chars=40)
    docs = documents(text)
    assert len(bc) == len(docs) and int(bc.lens.max()) <= 40
    gen = torch.Generator().manual_seed(0)
    b = bc.batch(torch.arange(64), gen)
    for i in range(64):
        s = vocab.decode(b.x[i]).rstrip("\u25a1")
        prefix, suffix, masked = s.split("\u2047")[0], s.split("\u2047")[1], s.split("\u2047")[2]
        assert docs[i].startswith(prefix + masked + suffix) and len(prefix + masked + suffix) <= 40


def _pack_by_slices(batch: Batch, capacity: int) -> tuple[torch.Tensor, ...]:
    """The plain reference of pack's copies: one slice per example, placed by the same first fit."""
    lens = example_lengths(batch.y).tolist()
    fill: list[int] = []
    place = [(0, 0)] * len(lens)
    for i in sorted(range(len(lens)), key=lambda i: -lens[i]):
        r = next((r for r, f in enumerate(fill) if f + lens[i] <= capacity), None)
        if r is None:
            r = len(fill)
            fill.append(0)
        place[i] = (r, fill[r])
        fill[r] += lens[i]
    shape = (len(fill), max(fill) if fill else 1)
    X, Y, P = (torch.zeros(shape, dtype=torch.long) for _ in range(3))
    S, R = torch.full(shape, -1, dtype=torch.long), torch.zeros(shape, dtype=torch.bool)
    for i, (r, o) in enumerate(place):
        n = lens[i]
        X[r, o : o + n], Y[r, o : o + n] = batch.x[i, :n], batch.y[i, :n]
        P[r, o : o + n], S[r, o : o + n] = torch.arange(n), i
        R[r, o : o + n] = batch.read_only[i, :n]
    return X, Y, P, S, R


@settings(max_examples=50, deadline=None)
@given(lens=st.lists(st.integers(0, 23), min_size=1, max_size=12), cap_extra=st.integers(0, 20),
       seed=st.integers(0, 2**16))
def test_pack_matches_per_example_copies(lens, cap_extra, seed):
    g = torch.Generator().manual_seed(seed)
    T = 23
    x = torch.randint(1, 50, (len(lens), T), generator=g)
    y = torch.zeros(len(lens), T, dtype=torch.long)
    for i, L in enumerate(lens):
        y[i, :L] = torch.randint(1, 50, (L,), generator=g)
    ro = torch.rand(len(lens), T, generator=g) < 0.5
    packed = pack(Batch(x, y, len(lens), read_only=ro), T + cap_extra)
    for got, want in zip((packed.x, packed.y, packed.pos, packed.seg, packed.read_only),
                         _pack_by_slices(Batch(x, y, len(lens), read_only=ro), T + cap_extra)):
        assert torch.equal(got, want)
