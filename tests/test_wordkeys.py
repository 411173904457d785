"""Word-key embeddings: keys follow the words, not the context; every path gives the same logits."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from factgpt.batches import Batch, pack
from factgpt.evaluate import predict, predict_reference
from factgpt.model import Layout
from factgpt.wordkeys import WordKeys

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def wk(vocab):
    return WordKeys(len(vocab), WordKeys.letters_of(vocab), 1 << 15, 8, 128)


def keys(wk, vocab, s: str) -> torch.Tensor:
    ids = torch.tensor([vocab.encode(s)])
    return wk.keys(ids, torch.arange(ids.shape[1])[None])[0][0]


def reference_words(s: str) -> list[tuple[str, str] | None]:
    """(previous word, current word so far) at every letter, by plain string scanning."""
    out, prev, cur = [], "", ""
    for i, ch in enumerate(s):
        if ch.isalpha():
            if i == 0 or not s[i - 1].isalpha():
                prev, cur = (cur if cur else prev), ""
            cur += ch
            out.append((prev, cur))
        else:
            out.append(None)
    return out


def test_name_has_the_same_key_in_a_line_and_in_a_question(wk, vocab):
    q = keys(wk, vocab, "Where was Ada Lovelace born?")
    line = keys(wk, vocab, "Ada Lovelace. born in London")
    other = keys(wk, vocab, "Bob Lovelace. born in Paris")
    i, j = len("Where was Ada Lovelace") - 1, len("Ada Lovelace") - 1
    assert q[i].tolist() == line[j].tolist()
    assert other[len("Bob Lovelace") - 1, 0] == line[j, 0]  # same word ...
    assert other[len("Bob Lovelace") - 1, 1:].tolist() != line[j, 1:].tolist()  # ... another person


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c.,Zé-", min_size=1, max_size=40))
def test_keys_depend_only_on_previous_and_current_word(wk, vocab, s):
    """Two positions get the same keys exactly when their (previous word, word so far) agree."""
    k = keys(wk, vocab, s)
    ref = reference_words(s)
    seen: dict = {}
    for i, w in enumerate(ref):
        if w is None:
            continue
        t = tuple(k[i].tolist())
        if w in seen:
            assert seen[w] == t
        seen[w] = t
    # distinct words get distinct pair keys (collisions are possible, but not among a few short words)
    assert len(set(seen.values())) == len(seen)


def test_packed_rows_keep_words_inside_their_example(wk, vocab):
    a, b = "Ada Lovelace. born", "Bob Smith went"
    ids = torch.tensor([vocab.encode(a) + vocab.encode(b)])
    pos = torch.tensor([list(range(len(a))) + list(range(len(b)))])
    k = wk.keys(ids, pos)[0][0]
    assert torch.equal(k[: len(a)], keys(wk, vocab, a))
    assert torch.equal(k[len(a):], keys(wk, vocab, b))


def _model(vocab, variant, seed=5):
    from factgpt.model import GPT, GPTConfig

    torch.manual_seed(seed)
    m = GPT(GPTConfig(len(vocab), n_layer=2, n_head=4, n_embd=64, variant=variant, embd_pdrop=0, resid_pdrop=0,
                      attn_pdrop=0, word_keys=1 << 12, letters=WordKeys.letters_of(vocab)))
    with torch.no_grad():  # a trained table is not zero: give it values so that it matters
        m.word_keys.table.weight.normal_(0, 0.5)
    return m.eval()


@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_packed_logits_equal_padded_logits(vocab, variant):
    model = _model(vocab, variant)
    texts = ["Ada Lovelace. born in London", "Where was Bob Smith born?", "Zed"]
    T = 40
    x = torch.zeros(len(texts), T, dtype=torch.long)
    for i, s in enumerate(texts):
        x[i, : len(s)] = torch.tensor(vocab.encode(s))
    y = torch.roll(x, -1, 1)
    y[:, -1] = 0
    y[x == 0] = 0
    padded, _ = model(x)
    p = pack(Batch(x, y, len(texts)))
    packed, _ = model(p.x, layout=p.layout)
    for i, s in enumerate(texts):
        n = len(s) - 1
        torch.testing.assert_close(packed[p.seg == i][:n], padded[i, :n], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_cached_decoding_equals_plain_decoding(vocab, dev_rows, variant):
    model = _model(vocab, variant)
    qs = [r.question for r in dev_rows[:12]]
    fast, plain = predict(model, vocab, qs, batch_size=5), predict_reference(model, vocab, qs)
    assert [p.text for p in fast] == [p.text for p in plain]
    assert [p.prob for p in fast] == pytest.approx([p.prob for p in plain], rel=1e-4, abs=1e-12)
    # the table is used: zeroing it changes some answer
    with torch.no_grad():
        model.word_keys.table.weight.zero_()
    assert [p.text for p in predict(model, vocab, qs)] != [p.text for p in fast]


def test_future_tokens_do_not_change_past_logits(vocab):
    model = _model(vocab, "vanilla")
    a = torch.tensor([vocab.encode("Ada Lovelace. born in London")])
    b = torch.tensor([vocab.encode("Ada Lovelace. born in Lima!!")])
    la, _ = model(a)
    lb, _ = model(b)
    n = len("Ada Lovelace. born in L")
    torch.testing.assert_close(la[:, :n], lb[:, :n])


def test_read_only_positions_do_not_train_the_table(vocab):
    model = _model(vocab, "vanilla")
    x = torch.tensor([vocab.encode("Ada Lovelace. born in London"), vocab.encode("Where was Bob Smith born?xxx")])
    y = torch.roll(x, -1, 1)
    ro = torch.zeros_like(x, dtype=torch.bool)
    ro[1] = True
    _, loss = model(x, y, Layout(read_only=ro))
    loss.backward()
    grad = model.word_keys.table.weight.grad
    k_line, L_line = model.word_keys.keys(x[:1], torch.arange(x.shape[1])[None])
    k_q, L_q = model.word_keys.keys(x[1:], torch.arange(x.shape[1])[None])
    line_rows = set(k_line[L_line].flatten().tolist())
    q_rows = set(k_q[L_q].flatten().tolist()) - line_rows
    assert q_rows and all(grad[r].abs().sum() == 0 for r in q_rows)
    assert all(grad[r].abs().sum() > 0 for r in line_rows)
    # the read-only flag changes gradients only, never the values
    torch.testing.assert_close(model(x, y, Layout(read_only=ro))[1], model(x, y)[1])


def test_pack_carries_the_read_only_flags():
    x = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    ro = torch.tensor([[False] * 4, [True] * 4])
    p = pack(Batch(x, x, 2, read_only=ro), capacity=8)
    assert p.read_only is not None
    assert torch.equal(p.read_only[p.seg == 0], torch.zeros(3, dtype=torch.bool))
    assert torch.equal(p.read_only[p.seg == 1], torch.ones(2, dtype=torch.bool))
