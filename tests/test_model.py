"""The GPT: initialization, defaults, the loss, and key/value-cache decoding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from factgpt.attention import SynthesizerAttention
from factgpt.batches import TensorExamples
from factgpt.datasets import NameDataset
from factgpt.evaluate import MAX_NEW, predict, predict_reference
from factgpt.model import GPT, GPTConfig
from factgpt.train import Trainer, TrainConfig

pytestmark = pytest.mark.usefixtures("single_thread")


# ---- init and defaults --------------------------------------------------------------------------
def test_default_config_is_the_course_model():
    cfg = GPTConfig(vocab_size=256)
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size) == (4, 8, 256, 128)
    assert cfg.variant == "vanilla"
    assert cfg.embd_pdrop == cfg.resid_pdrop == cfg.attn_pdrop == 0.1
    with pytest.raises(ValueError):
        GPTConfig(vocab_size=10, variant="linear")
    with pytest.raises(ValueError):
        GPTConfig(vocab_size=10, n_embd=30, n_head=4)


@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_parameter_init(vocab, variant):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(vocab), variant=variant))
    assert len(model.blocks) == 4
    n_linear = 0
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            w = m.weight.detach()
            assert abs(w.mean().item()) < 0.002, name
            assert abs(w.std().item() - 0.02) < 0.002, name
            if isinstance(m, nn.Linear):
                n_linear += 1
                if m.bias is not None:
                    assert torch.count_nonzero(m.bias) == 0, name
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)), name
            assert torch.count_nonzero(m.bias) == 0, name
        elif isinstance(m, SynthesizerAttention):
            assert m.w2.abs().max() <= 0.001 and m.w2.std() > 0
            assert torch.count_nonzero(m.b2) == 0
    # per block: vanilla key, query, value, proj; synthesizer w1, value, proj; then 2 in the MLP; and the head
    assert n_linear == 4 * ((4 if variant == "vanilla" else 3) + 2) + 1
    assert model.pos_emb.shape == (1, 128, 256)
    assert torch.count_nonzero(model.pos_emb) == 0
    assert model.head.bias is None


def test_sequence_longer_than_block_is_refused(make_model):
    model = make_model(block_size=16)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 17, dtype=torch.long))


# ---- the loss ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qa_batch(vocab, train_tsv_text):
    ex = TensorExamples(NameDataset(vocab, train_tsv_text, 128))
    return next(ex.epoch(8, torch.Generator().manual_seed(0)))


@torch.no_grad()
def test_loss_ignores_pad_targets(make_model, qa_batch):
    model = make_model("vanilla").eval()
    x, y = qa_batch.x, qa_batch.y
    logits, loss = model(x, y)
    real = y != 0
    manual = F.cross_entropy(logits[real], y[real])
    torch.testing.assert_close(loss, manual, atol=1e-6, rtol=1e-6)
    # the mean runs over the real targets only: an all-PAD example adds nothing
    x2 = torch.cat([x, x[:1]])
    y2 = torch.cat([y, torch.zeros_like(y[:1])])
    _, loss2 = model(x2, y2)
    torch.testing.assert_close(loss2, loss, atol=1e-6, rtol=1e-6)
    # inputs whose every later target is PAD do not change the loss (the padding tail)
    x3 = x.clone()
    lens = (real * torch.arange(1, 128)).amax(1)
    for i, n in enumerate(lens.tolist()):
        x3[i, n:] = torch.randint(2, 100, (127 - n,))
    _, loss3 = model(x3, y)
    torch.testing.assert_close(loss3, loss, atol=1e-6, rtol=1e-6)
    # turning a real target into PAD removes exactly that term from the mean
    i, t = 0, int(real[0].nonzero()[0])
    y4 = y.clone()
    y4[i, t] = 0
    _, loss4 = model(x, y4)
    terms = F.cross_entropy(logits[real], y[real], reduction="none")
    first = F.cross_entropy(logits[i, t][None], y[i, t][None])
    expect = (terms.sum() - first) / (terms.numel() - 1)
    torch.testing.assert_close(loss4, expect, atol=1e-5, rtol=1e-5)


def test_untrained_loss_is_near_uniform(make_model, qa_batch, vocab):
    _, loss = make_model("synthesizer").eval()(qa_batch.x, qa_batch.y)
    assert abs(loss.item() - math.log(len(vocab))) < 0.2


# ---- key/value cache decoding ----------------------------------------------------------------------
def _questions(dev_rows) -> list[str]:
    qs = sorted({r.question for r in dev_rows}, key=len)
    chosen = qs[:10] + qs[len(qs) // 2 - 5 : len(qs) // 2 + 5] + qs[-10:]  # short, middle, long
    # a question long enough to be near the limit of the cache path (len + 1 + 31 <= 128)
    chosen.append("Where was " + "Maximilian Alexander von Oppenheim-Hohenzollern the Younger of Bavaria" + " born?")
    return chosen


@pytest.fixture(scope="module")
def decoding_models(make_model, vocab, train_tsv_text):
    """An untrained and a slightly trained small model of each variant."""
    out = {}
    ex = TensorExamples(NameDataset(vocab, "\n".join(train_tsv_text.split("\n")[:128]), 128))
    for variant in ("vanilla", "synthesizer", "vanilla-rope"):
        kw = {"rope": True} if variant == "vanilla-rope" else {}
        base = variant.removesuffix("-rope")
        out[(variant, "untrained")] = make_model(base, seed=3, **kw).eval()
        model = make_model(base, seed=4, **kw)
        cfg = TrainConfig(max_epochs=3, batch_size=32, learning_rate=3e-3, warmup_tokens=0, precision="fp32")
        Trainer(model, ex, cfg).train(progress_bar=False)
        out[(variant, "trained")] = model.eval()
    return out


@pytest.mark.parametrize("state", ["untrained", "trained"])
@pytest.mark.parametrize("variant", ["vanilla", "synthesizer", "vanilla-rope"])
def test_kv_cache_decoding_equals_plain_decoding(decoding_models, vocab, dev_rows, variant, state):
    model = decoding_models[(variant, state)]
    qs = _questions(dev_rows)
    lengths = {len(q) for q in qs}
    assert len(lengths) >= 10 and min(lengths) <= 25 and max(lengths) >= 80
    fast = predict(model, vocab, qs)
    chunked = predict(model, vocab, qs, batch_size=7)
    plain = predict_reference(model, vocab, qs)
    assert len(fast) == len(plain) == len(qs)
    for q, a, c, b in zip(qs, fast, chunked, plain):
        assert a.text == b.text == c.text, q
        assert a.prob == pytest.approx(b.prob, rel=1e-4, abs=1e-12), q
        assert a.first_prob == pytest.approx(b.first_prob, rel=1e-4), q
        assert c.prob == pytest.approx(b.prob, rel=1e-4, abs=1e-12), q
        assert 0.0 < b.first_prob <= 1.0 and 0.0 <= b.prob <= b.first_prob + 1e-12
        assert "\u2047" not in a.text and len(a.text) <= MAX_NEW
    if state == "trained":
        # answers end with ⁇ (the cached path stops early), and are not all the same
        assert sum(len(p.text) < MAX_NEW for p in plain) > len(qs) // 2




@pytest.mark.parametrize("variant", ["vanilla", "synthesizer"])
def test_kv_cache_long_question_uses_the_reference_path(decoding_models, vocab, variant):
    """A question so long that decoding would run past the block is cropped like the reference."""
    model = decoding_models[(variant, "trained")]
    q = "Where was " + "x" * 100 + " born?"
    assert len(q) + 1 + MAX_NEW - 1 > 128
    a = predict(model, vocab, [q, "Where was Ann born?"])
    b = predict_reference(model, vocab, [q, "Where was Ann born?"])
    assert [p.text for p in a] == [p.text for p in b]


@pytest.mark.parametrize("how", ["forward", "predict", "predict_reference"])
@torch.no_grad()
def test_synthesizer_full_block(decoding_models, vocab, how):
    model = decoding_models[("synthesizer", "untrained")]
    if how == "forward":
        # B has block_size - 1 columns: 127 positions work, 128 is a clear error
        model(torch.zeros(1, 127, dtype=torch.long))
        with pytest.raises(ValueError, match="longer than this model takes"):
            model(torch.zeros(1, 128, dtype=torch.long))
    else:
        q = "Where was " + "x" * 80 + " born?"  # 96 characters: fits the cache path, reaches position 127
        assert len(q) + 1 + MAX_NEW - 1 <= 128
        (predict if how == "predict" else predict_reference)(model, vocab, [q])
