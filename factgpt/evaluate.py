"""Greedy answers to `question⁇`, their accuracy, and the London baseline.

predict_reference is the reference: one question at a time, the whole context
recomputed for every new character, like the original sampler. predict is
the fast path: all questions in one batch, a key/value cache so every step
computes one new position, and it stops once every answer has its closing ⁇.
Both give the same predictions (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch

from .datasets import QA
from .decode_step import lean_step, step_weights, supports
from .fileio import write_text_atomic
from .heldout import name_of
from .attention import KVCache
from .model import GPT, Layout
from .precision import autocast
from .vocab import MASK, Vocab

MAX_NEW = 32


@dataclass
class Prediction:
    text: str  # the answer: generated characters up to the next ⁇
    prob: float  # product of the answer characters' probabilities
    first_prob: float  # probability of the first answer character (or of ⁇ if the answer is empty)
    char_probs: tuple[float, ...] = ()  # the probability of each character of text


def _answer(gen_ids: list[int], probs: list[float], vocab: Vocab) -> Prediction:
    n = gen_ids.index(vocab.mask_id) if vocab.mask_id in gen_ids else len(gen_ids)
    p = 1.0
    for q in probs[:n]:
        p *= q
    return Prediction(vocab.decode(gen_ids[:n]), p, probs[0] if probs else 0.0, tuple(probs[:n]))


@torch.no_grad()
def predict_reference(model: GPT, vocab: Vocab, questions: Sequence[str], max_new: int = MAX_NEW,
                  precision: str = "fp32") -> list[Prediction]:
    """Reference decoding, one question at a time, cropping the context to the block size."""
    model.eval()
    dev = model.head.weight.device
    bs = model.max_len
    out = []
    for q in questions:
        x = torch.tensor([vocab.encode(q + MASK)], device=dev)
        gen, probs = [], []
        for _ in range(max_new):
            with autocast(precision, dev):
                logits, _ = model(x[:, -bs:])
            pr = logits[0, -1].float().softmax(-1)
            nxt = int(pr.argmax())
            gen.append(nxt)
            probs.append(float(pr[nxt]))
            x = torch.cat([x, torch.tensor([[nxt]], device=dev)], dim=1)
        out.append(_answer(gen, probs, vocab))
    return out


@torch.no_grad()
def predict(model: GPT, vocab: Vocab, questions: Sequence[str], max_new: int = MAX_NEW,
            batch_size: int = 512, precision: str = "fp32") -> list[Prediction]:
    """Batched greedy decoding with a key/value cache; same predictions as predict_reference."""
    model.eval()
    bs = model.max_len
    prompts = [vocab.encode(q + MASK) for q in questions]
    # A prompt so long that decoding would need more positions than the model has is
    # cropped by the reference sampler; those rare ones take the reference path.
    fits = [i for i, p in enumerate(prompts) if len(p) + max_new - 1 <= bs]
    out: list[Prediction | None] = [None] * len(prompts)
    for i in set(range(len(prompts))) - set(fits):
        out[i] = predict_reference(model, vocab, [questions[i]], max_new, precision)[0]
    for s in range(0, len(fits), batch_size):
        chunk = fits[s : s + batch_size]
        for i, pred in zip(chunk, decode_batch(model, vocab, [prompts[i] for i in chunk], max_new, precision)):
            out[i] = pred
    return out  # type: ignore[return-value]


def decode_batch(model: GPT, vocab: Vocab, prompts: list[list[int]], max_new: int,
                 precision: str = "fp32") -> list[Prediction]:
    """Greedy continuation of every prompt (token ids) at once, up to ⁇ or max_new characters.

    The prompts may differ in length; predict() and the recite decoding are built on it.
    A row whose prompt leaves less room than max_new - 1 more positions is decoded to the
    model's last position and no further: its characters past max_len - len(prompt) + 1 are
    not meaningful, and the caller cuts them (so that a row never depends on the others).
    """
    return decode_into_cache(model, vocab, prompts, max_new, precision)[0]


# A row may stop early: give_up(rows, logp_sum, p) says which of the characters just decoded make
# their row stop there (elementwise: rows, each character's row among the prompts; logp_sum, the
# log-probability of the row's characters up to and including it, in float64; p, its probability).
GiveUp = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# The most characters a pass with guesses feeds in all rows: a pass's products cost little more
# for a few rows of several characters than of one, but grow with the rows times the characters.
PASS_CHARS = 128


class Guesser(Protocol):
    """Guesses of the characters that follow a row's decoded text (speculative.py makes them): a
    pass feeds a row its last character and the guess, and keeps the guessed characters while
    each is the model's own choice, so that a right guess saves passes and a wrong one changes
    nothing but the work."""

    longest: int  # the most characters a guess has

    def guess(self, row: int, decoded: list[int], room: int) -> list[int]: ...

    def kept(self, row: int, guessed: int, kept: int) -> None: ...


def decode_into_cache(model: GPT, vocab: Vocab, prompts: list[list[int]], max_new: int,
                      precision: str = "fp32", limits: Sequence[int] | None = None,
                      give_up: GiveUp | None = None, guesser: Guesser | None = None,
                      stats: dict[str, int] | None = None) -> tuple[list[Prediction], KVCache]:
    """decode_batch, also giving its key/value cache. Row i's slots 0 .. len(prompts[i]) + n - 1 then
    hold the prompt and the first n generated characters, for every n up to all but the last
    character generated; the slots after those may hold anything (recite.recite_and_spans reads
    the recitations back out of it).

    limits: row i generates at most limits[i] characters (default max_new each). give_up: rows
    that stop before their ⁇ (GiveUp); a row keeps its characters up to the one that made it give
    up. A row that stops, at its ⁇, its limit or by giving up, leaves the batch: the rows still
    decoding are kept at the front of the cache (a row that stops trades places with the last
    of them) and only they are fed, so that a step costs what its rows need.
    guesser: each pass feeds every row its guess too (Guesser); stats counts the passes after the
    prompts' ("passes"). Every row gets the characters and, to float rounding, the probabilities
    it gets decoded alone, one character a step (tests)."""
    dev = model.head.weight.device
    B = len(prompts)
    lens = torch.tensor([len(p) for p in prompts], device=dev)
    P = int(lens.max())
    x = torch.zeros(B, P, dtype=torch.long, device=dev)
    for i, p in enumerate(prompts):
        x[i, : len(p)] = torch.tensor(p, device=dev)
    # positions stop at the model's last; guesses need room for a pass's characters past a row's
    top = model.max_len
    slots = min(P + max_new - 1 + (guesser.longest if guesser is not None else 0), top)
    cache = model.new_cache(B, slots, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    # Prefill: right-padded prompts; a pad slot is overwritten before any query can see it.
    with autocast(precision, dev):
        logits, _ = model(x, layout=Layout(pos=torch.arange(P, device=dev).expand(B, P)), cache=cache)
    first = logits[torch.arange(B, device=dev), lens - 1].float().softmax(-1).max(-1)
    limit = [min(n, max_new) for n in limits] if limits is not None else [max_new] * B
    lens_l = lens.tolist()
    gen: list[list[int]] = [[] for _ in range(B)]
    probs: list[list[float]] = [[] for _ in range(B)]
    logp = [0.0] * B  # the log-probability of each row's characters (give_up)
    mask = vocab.mask_id
    done = [n <= 0 for n in limit]

    def take(rows: list[int], chars: torch.Tensor, ps: torch.Tensor, keep: list[int]) -> None:
        """Rows' new characters (chars, ps: (rows, T)), the first keep[r] of row r's at most, each
        row stopping at its ⁇, its limit or where it gives up."""
        stop = None
        if give_up is not None:
            lp = torch.tensor([logp[i] for i in rows], dtype=torch.float64)[:, None] + ps.double().clamp(
                min=1e-30).log().cumsum(1)
            idx = torch.tensor(rows)[:, None].expand_as(lp)
            stop = give_up(idx.reshape(-1), lp.reshape(-1), ps.double().reshape(-1)).view(lp.shape).tolist()
            lp_l = lp.tolist()
        c_l, p_l = chars.tolist(), ps.tolist()
        for r, i in enumerate(rows):
            for j in range(keep[r]):
                c = c_l[r][j]
                gen[i].append(c)
                probs[i].append(p_l[r][j])
                if stop is not None:
                    logp[i] = lp_l[r][j]
                if c == mask or len(gen[i]) >= limit[i] or (stop is not None and stop[r][j]):
                    done[i] = True
                    break

    live = [i for i in range(B) if not done[i]]
    take(live, first[1][live][:, None].cpu(), first[0][live][:, None].cpu(), [1] * len(live))
    # order[r]: the prompt whose keys and values are in the cache's row r; rows 0 .. fed-1 are decoding
    order, fed = list(range(B)), B
    lean = step_weights(model) if supports(model, precision) else None  # the lean step where it computes this model
    passes = 0
    while True:
        fed = _gather_decoding(cache, order, fed, done)
        if fed == 0:
            break
        who = order[:fed]
        pos0 = [lens_l[i] + len(gen[i]) - 1 for i in who]  # where each row's last character goes
        guesses: list[list[int]] = [[] for _ in who]
        if guesser is not None:
            for r, i in enumerate(who):
                room = min(limit[i] - len(gen[i]) - 1, slots - 1 - pos0[r], top - 1 - pos0[r])
                guesses[r] = guesser.guess(i, gen[i], room)[: max(room, 0)] if room > 0 else []
        # a pass feeds T characters a row, the shorter rows padded past their own: every row's fit,
        # and PASS_CHARS in all at most
        T = 1 + max(len(g) for g in guesses)
        T = max(1, min(T, PASS_CHARS // fed, min(min(slots, top) - q for q in pos0)))
        guesses = [g[: T - 1] for g in guesses]
        x = torch.tensor([[gen[i][-1]] + g + [gen[i][-1]] * (T - 1 - len(g)) for i, g in zip(who, guesses)],
                         device=dev)
        # positions; without guesses a row at the model's last position stays there (what it decodes
        # further is cut), with guesses T keeps every row's positions inside the model
        at = (torch.tensor(pos0, device=dev)[:, None] + torch.arange(T, device=dev)[None]).clamp(max=top - 1)
        view = cache.first_rows(fed)
        if lean is not None:
            logits = lean_step(model, lean, x, at, view, filled=int(at.max()) + 1)
        else:
            with autocast(precision, dev):
                logits, _ = model(x, layout=Layout(pos=at), cache=view)
        passes += 1
        p, best = logits.float().softmax(-1).max(-1)
        best_l = best.tolist()
        # the model's choice after fed[: j + 1] is kept while the guess fed next equals it
        keep = []
        for r, (i, g) in enumerate(zip(who, guesses)):
            k = next((j for j in range(len(g)) if best_l[r][j] != g[j]), len(g))
            if g and guesser is not None:
                guesser.kept(i, len(g), k)
            keep.append(k + 1)
        take(who, best.cpu(), p.cpu(), keep)
    if order != list(range(B)):
        cache.regroup(torch.tensor(order, device=dev).argsort())  # back in the prompts' order
    if stats is not None:
        stats["passes"] = stats.get("passes", 0) + passes
    return [_answer(gen[i], probs[i], vocab) for i in range(B)], cache


def _gather_decoding(cache: KVCache, order: list[int], fed: int, done: list[bool]) -> int:
    """Keep the rows still decoding at the front of the cache: each row that stopped among the first
    ones trades places with one still decoding behind them (two rows copied, not the cache).
    Returns how many are decoding."""
    n = sum(not done[i] for i in order[:fed])
    stopped = [r for r in range(n) if done[order[r]]]
    going = [r for r in range(n, fed) if not done[order[r]]]
    if stopped:
        dst, src = stopped + going, going + stopped
        dev = cache.k.device
        cache.move_rows(torch.tensor(dst, device=dev), torch.tensor(src, device=dev))
        moved = [order[s] for s in src]
        for d, o in zip(dst, moved):
            order[d] = o
    return n


def accuracy(rows: Sequence[QA], preds: Sequence[str]) -> tuple[int, int]:
    """(correct, total): exact string match with the gold answer."""
    assert len(rows) == len(preds)
    return sum(r.answer == p for r, p in zip(rows, preds)), len(rows)


def london(rows: Sequence[QA]) -> list[str]:
    """The baseline that answers "London" to every question."""
    return ["London"] * len(rows)


def write_predictions(path, preds: Sequence[str]) -> None:
    write_text_atomic(path, "".join(p + "\n" for p in preds))


def report_line(correct: int, total: int) -> str:
    return f"Correct: {correct} out of {total}: {100.0 * correct / total}%"


@torch.no_grad()
def line_recall(model: GPT, vocab: Vocab, lines: dict[str, str], rows: list[QA]) -> dict[str, Any]:
    """Is the fact stored? For people whose answer is in their pretraining line (after
    the name), greedy continuation of the line up to the answer is checked to start with it.
    Set against question accuracy this separates storing a fact from extracting it."""
    prompts, answers = [], []
    for r in rows:
        name = name_of(r.question)
        line = lines.get(name or "")
        if line is None or name is None:
            continue
        at = line.find(r.answer, line.find(name) + len(name))
        if at <= 0 or at + 32 > model.max_len:
            continue
        prompts.append(vocab.encode(line[:at]))
        answers.append(r.answer)
    model.eval()
    got = [p.text for p in decode_batch(model, vocab, prompts, 32)] if prompts else []
    correct = sum(g.startswith(a) for g, a in zip(got, answers))
    return {"correct": correct, "total": len(answers), "of_people": len(rows),
            "accuracy": 100.0 * correct / max(1, len(answers))}
