"""Rows that stop early: per-row limits, rows leaving the batch, and recitations cut where their
refusal is certain (evaluate.decode_into_cache, recite.LineFloor)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import factgpt.evaluate as evaluate
from factgpt.evaluate import decode_into_cache
from factgpt.grounded import SCORES, AbstentionRule, answer_questions
from factgpt.recite import LineFloor, Recitation
from factgpt.speculative import Drafter, decode_one, guesses
from factgpt.wordkeys import WordKeys

from test_decode_step import spread

pytestmark = pytest.mark.usefixtures("single_thread")

TEXTS = ["Where was Ada born? ", "x", "Where was Bartholomew Jones born? Bart", "Lyon", "Where was Li born? ",
         "Where was Carl Maria von Weber born? "]


def models(make_model, vocab):
    return [spread(make_model("vanilla", block_size=48)), spread(make_model("synthesizer", block_size=48)),
            spread(make_model("vanilla", block_size=48, word_keys=1 << 12, letters=WordKeys.letters_of(vocab)))]


def same_prefixes(got, full, cache, full_cache, prompts) -> None:
    """Each row of `got` is the start of the same row of `full`: its characters, their probabilities,
    and the keys and values of the slots a reader of the cache relies on (the prompt and every
    character but the last)."""
    for i, (g, f) in enumerate(zip(got, full)):
        assert f.text.startswith(g.text)
        assert g.char_probs == pytest.approx(f.char_probs[: len(g.char_probs)], abs=1e-5)
        n = min(len(prompts[i]) + len(g.text) - 1, cache.k.shape[3], full_cache.k.shape[3])
        torch.testing.assert_close(cache.k[:, i, :, :n], full_cache.k[:, i, :, :n], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cache.v[:, i, :, :n], full_cache.v[:, i, :, :n], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("guessed", ["none", "right", "half"])
def test_rows_decode_in_a_batch_as_they_do_alone(make_model, vocab, guessed):
    """Rows of different lengths and limits, leaving the batch at different steps (and, guessed,
    fed several characters a pass), each get what they get decoded alone: the same characters,
    probabilities, and keys and values in the slots a reader relies on."""
    prompts = [vocab.encode(t) for t in TEXTS]
    limits = [30, 3, 12, 1, 30, 7]
    for model in models(make_model, vocab):
        alone = [decode_into_cache(model, vocab, [p], 30) for p in prompts]
        text = {"none": "", "right": "".join(t + a[0][0].text + "\n" for t, a in zip(TEXTS, alone)),
                "half": "".join(t + a[0][0].text[:5] + "zq" + a[0][0].text[5:] + "\n" for t, a in zip(TEXTS, alone))}
        guesser = guesses(Drafter(text[guessed], vocab), vocab, prompts) if guessed != "none" else None
        stats: dict[str, int] = {}
        got, cache = decode_into_cache(model, vocab, prompts, 30, limits=limits, guesser=guesser, stats=stats)
        assert [p.text for p in got] == [a[0][0].text[:n] for a, n in zip(alone, limits)]
        for i, (g, (a, a_cache)) in enumerate(zip(got, alone)):
            assert g.char_probs == pytest.approx(a[0].char_probs[: len(g.char_probs)], abs=1e-5)
            n = min(len(prompts[i]) + len(g.text) - 1, a_cache.k.shape[3])
            torch.testing.assert_close(cache.k[:, i, :, :n], a_cache.k[:, 0, :, :n], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(cache.v[:, i, :, :n], a_cache.v[:, 0, :, :n], atol=1e-5, rtol=1e-5)
            if model.config.word_keys:  # the words read so far follow their rows too
                assert torch.equal(cache.tokens[i, :n], a_cache.tokens[0, :n])
        if guessed == "right":
            assert stats["passes"] < 15  # the longest row, 30 characters, in a few passes


def floor_rows(model, vocab, prompts, max_new, floor_logp):
    """give_up at a fixed log-probability per row, and what the rows decode without it."""
    floors = torch.tensor(floor_logp, dtype=torch.float64)
    got, cache = decode_into_cache(model, vocab, prompts, max_new, give_up=lambda r, s, p: s < floors[r])
    full, full_cache = decode_into_cache(model, vocab, prompts, max_new)
    return got, cache, full, full_cache


def test_a_row_that_gives_up_keeps_its_characters_up_to_the_one_that_crossed_the_floor(make_model, vocab):
    prompts = [vocab.encode(t) for t in TEXTS]
    model = spread(make_model("vanilla", block_size=64))
    floors = [-2.0, -1e9, -0.5, -5.0, -1e9, -1.0]
    got, cache, full, full_cache = floor_rows(model, vocab, prompts, 25, floors)
    stopped = 0
    for g, f, fl in zip(got, full, floors):
        running = list(itertools.accumulate(math.log(max(q, 1e-30)) for q in f.char_probs))
        cross = next((j for j, s in enumerate(running) if s < fl), None)
        want = f.text if cross is None else f.text[: cross + 1]
        assert g.text == want
        stopped += cross is not None and cross + 1 < len(f.text)
    assert stopped >= 2  # the floors above stop some rows before their end
    same_prefixes(got, full, cache, full_cache, prompts)


def test_a_lone_question_gives_up_where_the_batch_would(make_model, vocab):
    model = spread(make_model("vanilla", block_size=64))
    for text, fl in [(TEXTS[0], -1.0), (TEXTS[2], -3.0), (TEXTS[5], -1e9)]:
        prompt = vocab.encode(text)
        floors = torch.tensor([fl], dtype=torch.float64)
        give_up = lambda r, s, p: s < floors[r]  # noqa: E731
        batch, _ = decode_into_cache(model, vocab, [prompt], 40, give_up=give_up)
        full, _ = decode_into_cache(model, vocab, [prompt], 40)
        for reference in (text + full[0].text, "@@@"):  # right guesses, no guesses
            one, _ = decode_one(model, vocab, prompt, 40, Drafter(reference, vocab), give_up=give_up)
            assert one.text == batch[0].text
            assert one.char_probs == pytest.approx(batch[0].char_probs, abs=1e-5)


@pytest.mark.parametrize("score", ["line_mean", "line_min"])
def test_a_line_floor_stops_only_lines_the_rule_refuses_and_their_cut_is_refused_too(make_model, vocab, score):
    model = make_model("vanilla", seed=0, block_size=64)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # a random model that does not stop at once
    qs = [f"Where was {a} {b} born?" for a in ("Ann", "Bo", "Carl", "Dmitri", "Eve") for b in ("Lee", "Tang", "Okafor")]
    full = answer_questions(model, vocab, qs, 60, None)
    line = sorted(a.scores[score] for a in full)
    k = len(line) // 2
    t = (line[k - 1] + line[k]) / 2  # half of the lines refused for want of a line, none at a tie
    rule = AbstentionRule({score: t, "line_mean_x_span": 0.0})
    every = answer_questions(model, vocab, qs, 60, rule)  # the analyses' path: every line recited and read
    cut = answer_questions(model, vocab, qs, 60, rule, read_refused_lines=False)  # ask's and serve's
    shorter = 0
    for a, b in zip(every, cut):
        assert (a.answer, a.no_line) == (b.answer, b.no_line)
        if b.no_line:
            assert a.recitation.startswith(b.recitation) and b.scores[score] < t
            shorter += len(b.recitation) < len(a.recitation)
        else:
            assert b.recitation == a.recitation and b.guess == a.guess
    assert shorter > 0 and any(not b.no_line for b in cut)


def test_the_line_mean_floor_is_the_bound_of_the_longest_line(vocab):
    floor = LineFloor("line_mean", 0.9)
    give_up = floor.give_up([10, 40])
    rows = torch.tensor([0, 1])
    s = torch.tensor([10 * math.log(0.9) - 1e-3] * 2, dtype=torch.float64)  # a line of 10 at mean just below 0.9
    assert give_up(rows, s, torch.ones(2, dtype=torch.float64)).tolist() == [True, False]
    # the recited part's own mean is below the threshold wherever a row gives up
    r = Recitation(evaluate.Prediction("a" * 10, 0.0, 0.0, (math.exp(float(s[0]) / 10),) * 10), None)
    assert SCORES["line_mean"](r, None) < 0.9
    assert LineFloor("line_min", 0.5).give_up([5])(rows[:1], s[:1], torch.tensor([0.49], dtype=torch.float64))[0]
    with pytest.raises(ValueError, match="line_min or line_mean"):
        LineFloor("span", 0.5)
