"""Recite, then answer: how a model trained on question-keyed lines answers.

Such a model has learned each person's line as the continuation of "Where was
NAME born? ", followed by ⁇ and the birthplace. To answer, it first recites the
line (greedy decoding from the question, stopped at ⁇ or at the length its
lines were cut to), then answers after ⁇. The span answer reads the answer
off the recitation instead: of every run of one to four words in the recited
line, the one the model finds most likely after ⁇. Both decodings are built
on evaluate.decode_batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .evaluate import MAX_NEW, Prediction, decode_batch
from .model import GPT
from .vocab import MASK, Vocab


@dataclass
class Recitation:
    line: Prediction  # the recited line (text and the probability of each character)
    answer: Prediction  # the free answer decoded after the line and ⁇


@torch.no_grad()
def recite(model: GPT, vocab: Vocab, questions: list[str], max_chars: int, batch_size: int = 512) -> list[Recitation]:
    """Greedy decoding of each question's line from "QUESTION ", stopped at ⁇ or at the
    line's cut (max_chars counts the question too), then of the answer after ⁇."""
    model.eval()
    out: list[Recitation] = []
    for s in range(0, len(questions), batch_size):
        qs = questions[s : s + batch_size]
        first = [vocab.encode(q + " ") for q in qs]
        room = [max(0, max_chars - len(p)) for p in first]
        steps = min(max(room) + 1, model.max_len - max(map(len, first)) + 1)  # never past the last position
        lines = decode_batch(model, vocab, first, steps) if max(room) > 0 else [Prediction("", 1.0, 0.0)] * len(qs)
        lines = [_cut(p, n) for p, n in zip(lines, room)]
        second = [p + vocab.encode(ln.text + MASK) for p, ln in zip(first, lines)]
        answers = decode_batch(model, vocab, second, MAX_NEW)
        out += [Recitation(ln, a) for ln, a in zip(lines, answers)]
    return out


def _cut(p: Prediction, n: int) -> Prediction:
    if len(p.text) <= n:
        return p
    probs = p.char_probs[:n]
    prob = 1.0
    for q in probs:
        prob *= q
    return Prediction(p.text[:n], prob, probs[0] if probs else 0.0, probs)


def recitation_spans(recitation: str, max_words: int = 4) -> list[str]:
    """Every run of 1..max_words consecutive words of the recitation, without the
    punctuation around it ("born in Paris, France." gives "Paris", "Paris, France", "France", ...)."""
    words = recitation.split()
    spans = dict.fromkeys(
        " ".join(words[i : i + n]).strip(" ,.;:()\"'") for i in range(len(words)) for n in range(1, max_words + 1)
        if i + n <= len(words))
    return [x for x in spans if x]


@torch.no_grad()
def best_spans(model: GPT, vocab: Vocab, questions: list[str], recitations: list[str],
               batch_size: int = 256) -> list[tuple[str, float] | None]:
    """For each question the span of its recitation with the highest log-probability,
    log P(span ⁇ | QUESTION RECITATION⁇) summed over the span's characters and the
    closing ⁇, with that log-probability; None where no span exists or fits the model."""
    model.eval()
    dev = next(model.parameters()).device
    seqs, owner, starts = [], [], []
    for i, (q, rec) in enumerate(zip(questions, recitations, strict=True)):
        prompt = vocab.encode(q + " " + rec + MASK)
        for span in recitation_spans(rec):
            ids = prompt + vocab.encode(span + MASK)
            if len(ids) <= model.max_len:
                seqs.append(ids)
                owner.append((i, span))
                starts.append(len(prompt))
    best: dict[int, tuple[str, float]] = {}
    for s in range(0, len(seqs), batch_size):
        chunk = seqs[s : s + batch_size]
        T = max(map(len, chunk))
        x = torch.zeros(len(chunk), T, dtype=torch.long)
        for j, ids in enumerate(chunk):
            x[j, : len(ids)] = torch.tensor(ids)
        logp = torch.log_softmax(model(x.to(dev))[0].float(), dim=-1).cpu()
        for j, ids in enumerate(chunk):
            st = starts[s + j]
            # the characters st..end are predicted at the positions before them
            score = float(logp[j, torch.arange(st - 1, len(ids) - 1), torch.tensor(ids[st:])].sum())
            i, span = owner[s + j]
            if i not in best or score > best[i][1]:
                best[i] = (span, score)
    return [best.get(i) for i in range(len(questions))]


def span_answers(model: GPT, vocab: Vocab, questions: list[str], recitations: list[str],
                 fallback: list[str], batch_size: int = 256) -> list[str]:
    """best_spans' span per question; the fallback answer where there is none."""
    got = best_spans(model, vocab, questions, recitations, batch_size)
    return [g[0] if g is not None else f for g, f in zip(got, fallback, strict=True)]
