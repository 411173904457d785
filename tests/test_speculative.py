"""Speculative decoding of a lone question (speculative.py): the model's own greedy characters,
whatever the guesses, in fewer passes where the guesses are right."""

from __future__ import annotations

import pytest
import torch

import factgpt.evaluate as evaluate
from factgpt.evaluate import decode_into_cache
from factgpt.speculative import Drafter, decode_one

from test_decode_step import spread

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["Where was Ada born? ", "Where was Bartholomew Jones born? Bart", "x"]


def plain(model, vocab, prompt: str, max_new: int):
    preds, cache = decode_into_cache(model, vocab, [vocab.encode(prompt)], max_new)
    return preds[0], cache


def same(a, b) -> None:
    assert a.text == b.text
    assert a.char_probs == pytest.approx(b.char_probs, abs=1e-5)


@pytest.mark.parametrize("max_new", [1, 2, 12, 40])
@pytest.mark.parametrize("guesses", ["right", "wrong", "half", "none"])
def test_speculative_decoding_gives_the_greedy_characters(make_model, vocab, max_new, guesses):
    # block 48: the longest prompt with 40 new characters runs past the model's last position,
    # where the plain path feeds every character at that position and the caller cuts them
    model = spread(make_model("vanilla", block_size=48))
    for prompt in PROMPTS:
        ref, ref_cache = plain(model, vocab, prompt, max_new)
        text = {"right": prompt + ref.text, "wrong": prompt + "".join(reversed(ref.text)),
                "half": prompt + ref.text[: len(ref.text) // 2] + "zq" + ref.text[len(ref.text) // 2 :],
                "none": "@@@@"}[guesses]
        stats: dict[str, int] = {}
        got, cache = decode_one(model, vocab, vocab.encode(prompt), max_new, Drafter(text, vocab), stats=stats)
        same(got, ref)
        # the slots the recitation's span scoring reads: the prompt and every character but the last
        n = min(len(vocab.encode(prompt)) + len(got.text) - 1, model.max_len)
        torch.testing.assert_close(cache.k[:, :, :, :n], ref_cache.k[:, :, :, :n], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cache.v[:, :, :, :n], ref_cache.v[:, :, :, :n], atol=1e-5, rtol=1e-5)
        if guesses == "right" and len(ref.text) > 20 and len(vocab.encode(prompt)) + max_new < model.max_len:
            assert stats["passes"] < len(ref.text) // 4  # right guesses come 16 characters a pass


def test_the_module_path_checks_guesses_as_the_lean_step_does(make_model, vocab, monkeypatch):
    model = spread(make_model("vanilla", block_size=48))
    prompt = vocab.encode(PROMPTS[1])
    ref, _ = plain(model, vocab, PROMPTS[1], 30)
    drafter = Drafter(PROMPTS[1] + ref.text[:10] + "zz" + ref.text[10:], vocab)
    lean, _ = decode_one(model, vocab, prompt, 30, drafter)
    monkeypatch.setattr(evaluate, "supports", lambda m, p: False)
    module, _ = decode_one(model, vocab, prompt, 30, drafter)
    same(lean, ref)
    same(module, ref)


def test_other_models_decode_speculatively_too(make_model, vocab):
    for model in (spread(make_model("synthesizer", block_size=48)), spread(make_model("vanilla", block_size=48, rope=True))):
        ref, _ = plain(model, vocab, PROMPTS[0], 25)
        got, _ = decode_one(model, vocab, vocab.encode(PROMPTS[0]), 25, Drafter(PROMPTS[0] + ref.text, vocab))
        same(got, ref)


def test_the_drafter_reads_the_longest_match(vocab):
    d = Drafter("Ann Lee was born in Paris. Bob Lee was born in Lyon, France.", vocab, chars=6)
    assert d.draft("Where was Bob Lee born? ", "Bob Lee was born") == " in Ly"  # 24 characters match there
    assert d.draft("Where was Bob Lee born? ", "Bob") == " Lee b"  # the name, from the question itself
    assert d.draft("Where was Bob Lee born? ", "B") == ""  # "? B": no end of 3 characters occurs
    assert d.draft("Q? ", "zzzz") == ""
    assert d.draft("Q? ", "was born", chars=3) == " in"
    assert d.draft("Q? ", "n in", shortest=8) == ""  # only 4 characters to match
    # a character the model cannot write ends the guess
    assert Drafter("born in Pa\u0001ris", vocab).draft("", "born in") == " Pa"
    with pytest.raises(ValueError):
        Drafter("x", vocab, chars=0)


def test_a_served_lone_question_answers_as_ask_does(vocab):
    """The shipped model, a few dev questions and made-up names, with and without guesses."""
    from factgpt.checkpoint import load_model
    from factgpt.fileio import bundled_path, shipped_model
    from factgpt.grounded import answer_questions

    model, meta = load_model(shipped_model("recite"), vocab=vocab)
    lines = bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()
    qs = [line.split("\t")[0] for line in lines[:6]] + ["Where was Zorblax Quimby born?", "Where was Hanna Pelkowitz born?"]
    drafter = Drafter(bundled_path("wiki.txt").read_text(encoding="utf-8"), vocab)
    for q in qs:
        a = answer_questions(model, vocab, [q], int(meta["max_chars"]), None, True, free_answers=False,
                             drafter=drafter)[0]
        b = answer_questions(model, vocab, [q], int(meta["max_chars"]), None, True, free_answers=False)[0]
        assert (a.guess, a.recitation) == (b.guess, b.recitation)
        assert a.scores == pytest.approx(b.scores, abs=1e-4, nan_ok=True)  # free_answer: not decoded
