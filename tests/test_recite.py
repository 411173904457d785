"""Recite, then answer (recite.py): the cached decodings against plain greedy decoding, and span scoring."""

import pytest
import torch


def test_recite_equals_plain_greedy_decoding(vocab, wiki_text):
    """The cached two-step decoding gives what argmax over the whole context, one character at a time, gives."""
    from factgpt.model import GPT, GPTConfig
    from factgpt.recite import recite

    torch.manual_seed(0)
    from factgpt.wordkeys import WordKeys

    model = GPT(GPTConfig(len(vocab), n_layer=2, n_head=2, n_embd=32, word_keys=512,
                          letters=WordKeys.letters_of(vocab))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # a random model that does not stop at once
    questions = ["Where was Ann Lee born?", "Where was Bo born?", "Where was Carl Maria von Weber born?"]
    max_chars = 60

    def greedy(ids: list[int], stop_after: int) -> list[int]:
        out = []
        while len(out) < stop_after and len(ids) < model.max_len:
            with torch.no_grad():
                logits, _ = model(torch.tensor([ids]))
            nxt = int(logits[0, -1].argmax())
            if nxt == vocab.mask_id:
                break
            out.append(nxt)
            ids = ids + [nxt]
        return out

    got = [(r.line.text, r.answer, r.line) for r in recite(model, vocab, questions, max_chars)]
    assert any(rec for rec, _, _ in got) and any(a.text for _, a, _ in got)  # both steps decode something here
    for q, (rec, ans, line) in zip(questions, got):
        assert len(line.char_probs) == len(rec) and all(0 < p <= 1 for p in line.char_probs)
        first = vocab.encode(q + " ")
        want_rec = vocab.decode(greedy(first, max_chars - len(first)))
        assert rec == want_rec
        want_ans = vocab.decode(greedy(first + vocab.encode(rec + "⁇"), 32))
        assert ans.text == want_ans


def test_recitation_spans_are_word_runs_without_punctuation():
    from factgpt.recite import recitation_spans

    got = recitation_spans("born in Paris, France.", max_words=2)
    assert got == ["born", "born in", "in", "in Paris", "Paris", "Paris, France", "France"]
    assert recitation_spans("") == []


def test_best_spans_pick_the_most_likely_span_batched_or_one_by_one(make_model, vocab):
    from factgpt.recite import best_spans, recitation_spans

    model = make_model("vanilla", seed=5).eval()
    with torch.no_grad():  # away from the near-uniform init, so that spans score differently
        g = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    qs = ["Where was Ann Lee born?", "Where was Bo born?", "Where was Cy born?"]
    recs = ["born in Paris, France, a poet", "born 1901 in Rome", ""]
    got = [g[0] if g else None for g in best_spans(model, vocab, qs, recs, batch_size=5)]

    def logp(prompt: str, span: str) -> float:
        p, s = vocab.encode(prompt), vocab.encode(span + "\u2047")
        with torch.no_grad():
            lp = torch.log_softmax(model(torch.tensor([p + s]))[0][0], dim=-1)
        return sum(float(lp[len(p) - 1 + k, t]) for k, t in enumerate(s))

    for q, r, g_ in zip(qs[:2], recs[:2], got[:2]):
        scores = {sp: logp(q + " " + r + "\u2047", sp) for sp in recitation_spans(r)}
        assert g_ == max(scores, key=scores.get)
    assert got[2] is None  # nothing recited: no span (the free answer stays)


@pytest.mark.parametrize("kind", ["vanilla", "synthesizer", "word_keys"])
@pytest.mark.parametrize("max_chars", [60, 120, 200])
def test_spans_read_off_the_recitations_cache_equal_those_of_a_fresh_prompt_pass(make_model, vocab, kind,
                                                                                 max_chars):
    """recite_and_spans (the prompts read out of the recitation's key/value cache, only ⁇ run) against
    recite() then best_spans() (each prompt passed anew): the same lines, the same spans, the same
    scores up to float rounding. max_chars 200: lines the decoding cannot finish before the model's
    last position, whose last character is never fed back (those are scored apart)."""
    from factgpt.model import GPT, GPTConfig
    from factgpt.recite import best_spans, recite, recite_and_spans
    from factgpt.wordkeys import WordKeys

    if kind == "word_keys":
        torch.manual_seed(3)
        model = GPT(GPTConfig(len(vocab), n_layer=2, n_head=4, n_embd=64, embd_pdrop=0, resid_pdrop=0, attn_pdrop=0,
                              word_keys=1 << 12, letters=WordKeys.letters_of(vocab)))
    else:
        model = make_model(kind, seed=3)
    with torch.no_grad():  # away from the near-uniform init, so that lines and spans differ
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    model.eval()
    qs = ["Where was Ann Lee born?", "Where was Bo born?", "Where was Cyrille de la Fontaine-Martel born?",
          "Where was X born?"]
    recs = recite(model, vocab, qs, max_chars, batch_size=3, answers=True)  # the same batches of questions
    spans = best_spans(model, vocab, qs, [r.line.text for r in recs], batch_size=3)
    recs2, spans2 = recite_and_spans(model, vocab, qs, max_chars, batch_size=3, answers=True)
    assert [r.line.text for r in recs] == [r.line.text for r in recs2]
    assert [r.answer.text for r in recs] == [r.answer.text for r in recs2]
    assert max_chars > 60 or any(s is not None for s in spans)  # longer lines leave spans no room
    for a, b in zip(spans, spans2):
        assert (a is None) == (b is None)
        if a is not None:
            assert a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-4)


@pytest.mark.parametrize("max_chars", [80, 200])
def test_a_questions_recitation_and_answer_do_not_depend_on_the_others_in_its_batch(make_model, vocab, max_chars):
    """Rows decode to their own limit (max_chars, or the model's last position), not to one the
    longest question of the batch sets: each question recited alone and in a batch agree."""
    from factgpt.recite import recite

    model = make_model("vanilla", seed=4)
    with torch.no_grad():
        g = torch.Generator().manual_seed(2)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3)
    model.eval()
    qs = ["Where was X born?", "Where was " + "Bartholomew-" * 5 + "Smith born?", "Where was Ann Lee born?"]
    together = recite(model, vocab, qs, max_chars, answers=True)
    for q, r in zip(qs, together):
        alone = recite(model, vocab, [q], max_chars, answers=True)[0]
        assert alone.line.text == r.line.text and alone.answer.text == r.answer.text
        assert len(r.line.text) <= max(0, min(max_chars, model.max_len + 1) - len(q) - 1)


@pytest.mark.parametrize("prune", [True, False])
def test_span_scoring_near_the_models_last_position(make_model, vocab, prune):
    """A question whose prompt nearly fills the model, scored in one chunk with a question whose
    carrier is long: the first row's padding reaches past the model's last position (it used to
    index past the position table and fail after a whole recipe's training). Both questions get the
    reference's span and score."""
    from factgpt.recite import best_spans, best_spans_reference

    model = make_model("vanilla", seed=5, block_size=96).eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    qs = ["Where was Ann Lee born?", "Where was Bo born?"]
    # the first prompt `QUESTION RECITATION⁇` is 94 characters: only the one-letter span "a" fits
    # after it; the second's is 62, with carriers of up to 31 characters
    recs = ["born in Rome and raised in a town by the sea, where he was a poet, an",
            "born in Saint Petersburg-on-Sea, Ruritania"]
    assert len(qs[0] + " " + recs[0]) + 1 == 94
    got = best_spans(model, vocab, qs, recs, prune=prune)
    ref = best_spans_reference(model, vocab, qs, recs)
    assert [g[0] for g in got] == [r[0] for r in ref]
    assert [g[1] for g in got] == pytest.approx([r[1] for r in ref], abs=1e-4)


def test_span_scores_hold_every_fitting_span_and_best_spans_picks_their_maximum(make_model, vocab):
    """span_scores (every span scored as a whole sequence) lists each span of the recitation that
    fits the model, in the recitation's order, and the fast best_spans answers with its maximum."""
    from factgpt.recite import best_spans, recitation_spans, span_scores

    model = make_model("vanilla", seed=3, block_size=96).eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    qs = ["Where was Ann Lee born?", "Where was Bo born?", "Where was Cy born?"]
    recs = ["born in Wichita, Kansas, a city", "born 3 May 1901 in Saint Petersburg-on-Sea, Ruritania", ""]
    scores = span_scores(model, vocab, qs, recs, batch_size=7)
    assert scores[2] == {}
    for q, rec, sc in zip(qs, recs, scores):
        fit = [s for s in recitation_spans(rec) if len(q) + 1 + len(rec) + 1 + len(s) + 1 <= model.max_len]
        assert list(sc) == fit
        assert all(v <= 1e-5 for v in sc.values())
    fast = best_spans(model, vocab, qs, recs)
    for sc, got in zip(scores, fast):
        if not sc:
            assert got is None
            continue
        assert got[0] == max(sc, key=sc.get)
        assert got[1] == pytest.approx(sc[got[0]], abs=1e-4)


def test_first_part_of_a_place_pair():
    """bench/piece_choice.py reads A off "A, B" for an answer B, multi-word A included, and nothing else."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("pc", Path(__file__).parents[1] / "bench" / "piece_choice.py")
    pc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pc)
    assert pc.first_part("Kansas", "born March 24, 1947, Wichita, Kansas), is") == "Wichita"
    assert pc.first_part("New York", "born in New York City, New York .") == "New York City"
    assert pc.first_part("Wichita", "born March 24, 1947, Wichita, Kansas), is") is None
    assert pc.first_part("Kan", "born in Wichita, Kansas") is None
    assert pc.first_part("", "born in Wichita, Kansas") is None
