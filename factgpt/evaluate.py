"""Greedy answers to `question⁇`, their accuracy, and the London baseline.

predict_reference is the reference: one question at a time, the whole context
recomputed for every new character, like the original sampler. predict is
the fast path: all questions in one batch, a key/value cache so every step
computes one new position, and it stops once every answer has its closing ⁇.
Both give the same predictions (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

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


def decode_into_cache(model: GPT, vocab: Vocab, prompts: list[list[int]], max_new: int,
                      precision: str = "fp32") -> tuple[list[Prediction], KVCache]:
    """decode_batch, also giving its key/value cache. Row i's slots 0 .. len(prompts[i]) + n - 1 then hold the prompt and the first n generated
    characters, for every n up to all but the last character generated; the slots after those may
    hold what was decoded past a row's ⁇ while other rows went on (recite.recite_and_spans reads
    the recitations back out of it)."""
    dev = model.head.weight.device
    B = len(prompts)
    lens = torch.tensor([len(p) for p in prompts], device=dev)
    P = int(lens.max())
    x = torch.zeros(B, P, dtype=torch.long, device=dev)
    for i, p in enumerate(prompts):
        x[i, : len(p)] = torch.tensor(p, device=dev)
    slots = min(P + max_new - 1, model.max_len)  # positions stop at the model's last
    cache = model.new_cache(B, slots, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    rows = torch.arange(B, device=dev)
    # Prefill: right-padded prompts; a pad slot is overwritten before any query can see it.
    with autocast(precision, dev):
        logits, _ = model(x, layout=Layout(pos=torch.arange(P, device=dev).expand(B, P)), cache=cache)
    last = logits[rows, lens - 1].float()
    gen = torch.zeros(B, max_new, dtype=torch.long, device=dev)
    probs = torch.zeros(B, max_new, device=dev)
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    # the steps after the prefill: the lean step where it computes this model (decode_step.py)
    lean = step_weights(model) if supports(model, precision) else None
    for t in range(max_new):
        pr = last.softmax(-1)
        p, nxt = pr.max(-1)
        gen[:, t], probs[:, t] = nxt, p
        done |= nxt == vocab.mask_id
        if t == max_new - 1 or bool(done.all()):
            break
        # a row at the model's last position stays there: what it decodes further is cut
        pos = (lens + t).clamp(max=model.max_len - 1)
        if lean is not None:
            last = lean_step(model, lean, nxt[:, None], pos[:, None], cache, filled=min(P + t, model.max_len - 1) + 1)[:, 0]
            continue
        with autocast(precision, dev):
            logits, _ = model(nxt[:, None], layout=Layout(pos=pos[:, None]), cache=cache)
        last = logits[:, -1].float()
    n = t + 1
    g, pb = gen[:, :n].tolist(), probs[:, :n].tolist()
    return [_answer(g[i], pb[i], vocab) for i in range(B)], cache


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
