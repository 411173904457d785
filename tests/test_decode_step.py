"""The lean decoding step (decode_step.py) against the module path it replaces."""

from __future__ import annotations

import pytest
import torch

import factgpt.evaluate as evaluate
from factgpt.decode_step import step_weights, supports
from factgpt.evaluate import decode_into_cache


def spread(model):
    """Weights large enough that the model's greedy choices are far from ties (an untrained model's
    near-uniform logits would let float rounding pick between near-equal characters)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def decode(model, vocab, prompts, max_new, lean: bool, monkeypatch):
    monkeypatch.setattr(evaluate, "supports", (lambda m, p: supports(m, p)) if lean else (lambda m, p: False))
    return decode_into_cache(model, vocab, prompts, max_new)


@pytest.mark.parametrize("max_new", [1, 9, 40])
def test_lean_step_decodes_as_the_module_path(make_model, vocab, monkeypatch, single_thread, max_new):
    model = spread(make_model("vanilla", block_size=48))
    texts = ["Where was Ada born? ", "x", "Where was Bartholomew Jones born? Bart", "Lyon"]
    prompts = [vocab.encode(t) for t in texts]
    assert supports(model, "fp32")
    fast, cache_fast = decode(model, vocab, prompts, max_new, True, monkeypatch)
    ref, cache_ref = decode(model, vocab, prompts, max_new, False, monkeypatch)
    assert [p.text for p in fast] == [p.text for p in ref]
    for a, b in zip(fast, ref):
        assert a.char_probs == pytest.approx(b.char_probs, abs=1e-5)
    # the cache the recitation's span scoring reads holds the same keys and values
    torch.testing.assert_close(cache_fast.k, cache_ref.k, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache_fast.v, cache_ref.v, atol=1e-5, rtol=1e-5)


def test_laid_out_weights_follow_the_parameters(make_model, vocab, monkeypatch, single_thread):
    """A weight changed in place (a training step, a load) is seen by the next decoding."""
    model = spread(make_model("vanilla"))
    prompts = [vocab.encode("Where was Ada born? ")]
    before = step_weights(model)
    assert step_weights(model) is before  # kept while nothing changes
    with torch.no_grad():
        model.blocks[0].mlp[0].weight.mul_(-1.5)
    assert step_weights(model) is not before
    moved = step_weights(model)
    model.to(torch.float64).to(torch.float32)  # new tensors, same values
    assert step_weights(model) is not moved
    fast, _ = decode(model, vocab, prompts, 20, True, monkeypatch)
    ref, _ = decode(model, vocab, prompts, 20, False, monkeypatch)
    assert [p.text for p in fast] == [p.text for p in ref]


@pytest.mark.parametrize("what", ["synthesizer", "rope", "reference", "bf16"])
def test_other_models_keep_the_module_path(make_model, what):
    kw = {"rope": True} if what == "rope" else {"reference": True} if what == "reference" else {}
    model = make_model("synthesizer" if what == "synthesizer" else "vanilla", **kw)
    assert not supports(model, "bf16" if what == "bf16" else "fp32")
