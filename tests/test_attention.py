"""Both attention variants: causality, packing, the fused kernel, the synthesizer equation, dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from factgpt.attention import Context, SynthesizerAttention
from conftest import unpack
from factgpt.batches import BatchedCorruption, TensorExamples, example_lengths, pack
from factgpt.datasets import NameDataset
from factgpt.dropout import Dropout

pytestmark = pytest.mark.usefixtures("single_thread")

VARIANTS = [("vanilla", {}), ("synthesizer", {}), ("synthesizer", {"synth_per_head_b": True}), ("vanilla", {"rope": True})]
IDS = ["vanilla", "synthesizer", "synthesizer-per-head-b", "vanilla-rope"]


def randomize(model: torch.nn.Module, std: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Move the weights away from the near-uniform attention of the init, so that the tests have teeth."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return model.eval()


@pytest.fixture(scope="module")
def qa_batch(vocab, train_tsv_text):
    ex = TensorExamples(NameDataset(vocab, train_tsv_text, 128))
    return next(ex.epoch(12, torch.Generator().manual_seed(0), shuffle=True))


@pytest.fixture(scope="module")
def pretrain_batch(vocab, wiki_text):
    bc = BatchedCorruption(wiki_text, vocab, 128)
    return bc.batch(torch.arange(100, 112), torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def models(make_model):
    return {
        name: randomize(make_model(v, seed=1, **kw), seed=2)
        for name, (v, kw) in zip(IDS, VARIANTS)
    }


# ---- causality ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", IDS)
@torch.no_grad()
def test_causal_padded(models, name, vocab):
    model = models[name]
    g = torch.Generator().manual_seed(3)
    x = torch.randint(2, len(vocab), (2, 127), generator=g)
    base, _ = model(x)
    for t in (0, 40, 125):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randint(2, len(vocab), (2, 126 - t), generator=g)
        out, _ = model(x2)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-5, rtol=0)
        assert not torch.allclose(out[:, t + 1], base[:, t + 1], atol=1e-3)  # the change is seen later on


@pytest.mark.parametrize("name", IDS)
@torch.no_grad()
def test_causal_packed(models, name, vocab, qa_batch):
    model = models[name]
    packed = pack(qa_batch)
    base, _ = model(packed.x, layout=packed.layout)
    g = torch.Generator().manual_seed(4)
    W = packed.x.shape[1]
    for r in range(min(3, packed.x.shape[0])):
        t = int(torch.randint(0, W - 1, (1,), generator=g))
        x2 = packed.x.clone()
        x2[r, t + 1 :] = torch.randint(2, len(vocab), (W - t - 1,), generator=g)
        out, _ = model(x2, layout=packed.layout)
        torch.testing.assert_close(out[r, : t + 1], base[r, : t + 1], atol=1e-5, rtol=0)
        others = [i for i in range(packed.x.shape[0]) if i != r]
        torch.testing.assert_close(out[others], base[others], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", IDS)
@torch.no_grad()
def test_packed_examples_do_not_see_each_other(models, name, vocab, qa_batch):
    """Changing one example of a packed row leaves every other example of that row unchanged."""
    model = models[name]
    packed = pack(qa_batch)
    base, _ = model(packed.x, layout=packed.layout)
    row0 = packed.seg[0]
    first = int(row0[0])
    assert len(set(row0[row0 >= 0].tolist())) >= 2  # the first row holds several examples
    x2 = packed.x.clone()
    x2[0][row0 == first] = torch.randint(2, len(vocab), (int((row0 == first).sum()),))
    out, _ = model(x2, layout=packed.layout)
    other = (row0 != first) & (row0 >= 0)
    torch.testing.assert_close(out[0][other], base[0][other], atol=1e-5, rtol=0)
    assert not torch.allclose(out[0][row0 == first], base[0][row0 == first], atol=1e-3)


# ---- packing equivalence -------------------------------------------------------------------------
@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("which", ["qa", "pretrain"])
@torch.no_grad()
def test_packing_equivalence(models, name, which, qa_batch, pretrain_batch):
    model = models[name]
    batch = qa_batch if which == "qa" else pretrain_batch
    logits, loss = model(batch.x, batch.y)
    packed = pack(batch)
    assert packed.x.shape[0] < batch.n_examples
    plogits, ploss = model(packed.x, packed.y, packed.layout)
    lens = example_lengths(batch.y).tolist()
    for i, n in enumerate(lens):
        torch.testing.assert_close(unpack(packed, plogits, i), logits[i, :n], atol=1e-4, rtol=0)
    torch.testing.assert_close(ploss, loss, atol=1e-5, rtol=0)


# ---- fused = explicit ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", IDS)
@torch.no_grad()
def test_fused_equals_explicit(models, name, qa_batch):
    model = models[name]
    a, la = model(qa_batch.x, qa_batch.y)
    b, lb = model(qa_batch.x, qa_batch.y, explicit=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(la, lb, atol=1e-6, rtol=0)
    p = pack(qa_batch)
    a, la = model(p.x, p.y, p.layout)
    b, lb = model(p.x, p.y, p.layout, explicit=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(la, lb, atol=1e-6, rtol=0)
    # the reference switch takes the explicit path too
    model.use_reference_kernels(True)
    try:
        c, _ = model(qa_batch.x)
    finally:
        model.use_reference_kernels(False)
    torch.testing.assert_close(c, model(qa_batch.x, explicit=True)[0], atol=0, rtol=0)


# ---- the synthesizer equation -----------------------------------------------------------------------
def synthesizer_by_the_equation(m: SynthesizerAttention, x: torch.Tensor) -> torch.Tensor:
    """Y_i = softmax(mask(ReLU(X A_i + b1_i) B_i + b2)) (X V_i); Y = [Y_1 … Y_h] proj."""
    B, T, C = x.shape
    nh = m.n_head
    hs = C // nh
    W1, b1 = m.w1.weight.T, m.w1.bias  # x @ W1 + b1: (B, T, C), head i in columns i*hs:(i+1)*hs
    Wv, bv = m.value.weight.T, m.value.bias
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    heads = []
    for i in range(nh):
        cols = slice(i * hs, (i + 1) * hs)
        A_i, b1_i = W1[:, cols], b1[cols]
        B_i = m.w2[i] if m.w2.dim() == 3 else m.w2  # (hs, block_size - 1)
        assert B_i.shape == (hs, m.b2.shape[0])
        scores = F.relu(x @ A_i + b1_i) @ B_i[:, :T] + m.b2[:T]  # (B, T, T): query t, key position j
        att = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        heads.append(att @ (x @ Wv[:, cols] + bv[cols]))
    return m.proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("chunks", [1, 3])
def test_cpu_dropout_attention_equals_explicit_in_training(make_model, name, packed, chunks, pretrain_batch,
                                                           monkeypatch):
    """The CPU training path (_DropoutAttention, its queries in one slice or three) draws the same
    dropout masks as the explicit path and gives its loss and every gradient up to rounding."""
    import factgpt.attention as attention

    monkeypatch.setattr(attention, "QUERY_CHUNKS", chunks)
    calls = []
    apply = attention._DropoutAttention.apply
    monkeypatch.setattr(attention._DropoutAttention, "apply", lambda *a: calls.append(1) or apply(*a))
    v, kw = dict(zip(IDS, VARIANTS))[name]
    model = randomize(make_model(v, seed=1, dropout=0.1, **kw), seed=2).train()
    b = pack(pretrain_batch) if packed else pretrain_batch
    assert b.x.shape[1] == 127  # long enough for three slices
    results = []
    for explicit in (False, True):
        torch.manual_seed(7)
        model.zero_grad()
        _, loss = model(b.x, b.y, b.layout, explicit=explicit)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (fast_loss, fast_grads), (ref_loss, ref_grads) = results
    assert len(calls) == model.config.n_layer  # the first pass took the fast function, the explicit one did not
    torch.testing.assert_close(fast_loss, ref_loss, atol=1e-5, rtol=0)
    assert fast_grads.keys() == ref_grads.keys()
    for n in ref_grads:
        torch.testing.assert_close(fast_grads[n], ref_grads[n], atol=1e-5, rtol=1e-4, msg=n)
    torch.manual_seed(8)  # and the masks are random: another draw gives another loss
    assert float(model(b.x, b.y, b.layout)[1].detach()) != pytest.approx(float(fast_loss), abs=1e-4)


@pytest.mark.parametrize("per_head_b", [False, True])
@pytest.mark.parametrize("explicit", [False, True])
@torch.no_grad()
def test_synthesizer_matches_the_equation(per_head_b, explicit):
    torch.manual_seed(0)
    C, nh, bsz = 32, 4, 24
    m = SynthesizerAttention(C, nh, bsz, attn_pdrop=0.1, resid_pdrop=0.1, per_head_b=per_head_b).eval()
    assert m.w2.shape == ((nh, C // nh, bsz - 1) if per_head_b else (C // nh, bsz - 1))
    assert m.b2.shape == (bsz - 1,)
    for p in m.parameters():
        p.normal_(0, 0.5)
    for T in (1, 7, bsz - 1):
        x = torch.randn(3, T, C)
        ctx = Context(pos=torch.arange(T).expand(3, T), explicit=explicit)
        torch.testing.assert_close(m(x, ctx), synthesizer_by_the_equation(m, x), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_synthesizer_scores_ignore_key_content():
    """A synthesizer's attention weights depend on the query and the key's position only."""
    torch.manual_seed(1)
    m = SynthesizerAttention(16, 2, 12, 0.0, 0.0).eval()
    for p in m.parameters():
        p.normal_(0, 0.5)
    m.value.weight.zero_()
    m.value.bias.copy_(torch.arange(16.0))  # every value row is the same
    x = torch.randn(1, 8, 16)
    x2 = x.clone()
    x2[0, :7] = torch.randn(7, 16)  # change all keys but the last query's own token
    ctx = Context(pos=torch.arange(8)[None])
    torch.testing.assert_close(m(x, ctx)[0, -1], m(x2, ctx)[0, -1], atol=1e-6, rtol=0)


# ---- dropout -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_statistics_and_gradient(p):
    torch.manual_seed(0)
    d = Dropout(p).train()
    x = (torch.rand(400_000) + 0.5).requires_grad_()
    y = d(x)
    keep = y != 0
    frac = keep.float().mean().item()
    assert abs(frac - (1 - p)) < 0.005
    scale = (y[keep] / x[keep]).mean().item()
    assert scale == pytest.approx(1 / (1 - p), rel=1e-4)  # p is rounded to a multiple of 2^-16
    torch.testing.assert_close(y[keep], x[keep] * scale)
    g = torch.randn(400_000)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(keep, g * scale, torch.zeros(())))
    # fresh masks each call
    assert not torch.equal(d(x) != 0, keep)


@pytest.mark.parametrize("p", [0.0, 1e-6, 0.1, 0.25, 0.5, 0.9, 0.999999])
def test_drop_mask_rounds_p_and_scales_to_keep_the_expectation(p):
    from factgpt.dropout import drop_mask

    torch.manual_seed(1)
    x = torch.ones(2_000_003)  # not a multiple of four: the last 64-bit draw is cut
    drop, scale = drop_mask(x.shape, p)
    assert drop.shape == x.shape and drop.dtype == torch.bool
    p_real = 1 - 1 / scale
    assert abs(p_real - p) <= 2**-16 and p_real < 1
    assert abs(drop.float().mean().item() - p_real) < 5 * (p_real * (1 - p_real) / x.numel()) ** 0.5 + 1e-9


def test_drop_mask_pieces_of_one_draw_are_independent():
    """Four neighbours share one 64-bit draw: their drops must still be independent (and uniform)."""
    from factgpt.dropout import drop_mask

    torch.manual_seed(2)
    drop, _ = drop_mask((4_000_000,), 0.5)
    d = drop.view(-1, 4).float()
    torch.testing.assert_close(d.mean(0), torch.full((4,), 0.5), atol=2e-3, rtol=0)
    both = (d[:, :, None] * d[:, None, :]).mean(0)  # P(drop i and drop j) = 1/4 for i != j
    off = both[~torch.eye(4, dtype=torch.bool)]
    torch.testing.assert_close(off, torch.full_like(off, 0.25), atol=2e-3, rtol=0)


def test_dropout_eval_and_zero_are_identity():
    x = torch.randn(1000)
    d = Dropout(0.3).eval()
    assert torch.equal(d(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    with pytest.raises(ValueError):
        Dropout(1.0)
    with pytest.raises(ValueError):
        Dropout(-0.1)


def test_reference_dropout_has_the_same_distribution():
    torch.manual_seed(0)
    d = Dropout(0.25).train()
    d.reference = True
    y = d(torch.ones(400_000))
    assert abs((y != 0).float().mean().item() - 0.75) < 0.005
    assert torch.allclose(y[y != 0], torch.full((1,), 1 / 0.75))


def test_model_dropout_active_only_in_training(make_model, qa_batch):
    model = make_model("vanilla", dropout=0.1)
    model.eval()
    a, _ = model(qa_batch.x)
    b, _ = model(qa_batch.x)
    assert torch.equal(a, b)
    model.train()
    c, _ = model(qa_batch.x)
    assert not torch.allclose(a, c, atol=1e-4)


# ---- rotary positions ------------------------------------------------------------------------------
def test_rope_scores_depend_on_distance_only():
    from factgpt.attention import rope_angles, rotate

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16, generator=g), torch.randn(1, 1, 1, 16, generator=g)
    def score(i, j):
        rq = rotate(q, rope_angles(torch.tensor([[i]]), 16))
        rk = rotate(k, rope_angles(torch.tensor([[j]]), 16))
        return float((rq * rk).sum())
    assert score(5, 2) == pytest.approx(score(40, 37), abs=1e-4)  # same distance, same score
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)
    assert score(0, 0) == pytest.approx(float((q * k).sum()), abs=1e-5)  # position 0 is not rotated


def test_rope_model_has_no_position_vectors_and_refuses_the_synthesizer(make_model):
    m = make_model("vanilla", rope=True)
    assert m.pos_emb is None and "pos_emb" not in m.state_dict()
    with pytest.raises(ValueError, match="rope needs the vanilla variant"):
        make_model("synthesizer", rope=True)


@given(T=st.integers(1, 130), n=st.integers(1, 6))
def test_query_chunks_cover_every_query_with_every_key_it_may_see(T, n):
    from factgpt.attention import query_chunks

    chunks = query_chunks(T, T, n)
    assert chunks[0][0] == 0 and chunks[-1][1] == T and len(chunks) <= n
    for (first, end, keys), nxt in zip(chunks, chunks[1:] + [(T, None, None)]):
        assert first < end == nxt[0]  # consecutive, no gaps
        assert end <= keys <= T  # the last query of the slice (end - 1) sees keys 0..end-1
    assert query_chunks(5, 9, 3) == [(0, 5, 9)]  # not self-attention over one sequence: one slice
