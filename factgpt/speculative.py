"""Greedy decoding of one question in fewer passes: guesses read off a text, checked by the model.

Decoding one question on a CPU is a chain of ~50 one-character steps, each of which reads
every weight of the model for a single vector: the step is bound by reading weights and by
per-operation overhead, not by arithmetic, and feeding the model 17 characters at once costs
little more than feeding it one. Speculative decoding uses that: a cheap guess of the next
characters (the draft) is fed in one pass together with the last decoded character, and the
model's own greedy choice at each fed position says how much of the guess to keep: the draft's
characters are kept while each equals the model's argmax after the ones before it, and the
model's choice at the first that differs is kept too. What comes out is the model's greedy
decoding, character for character; the draft decides only how many passes it takes (tests
compare both paths with right, wrong, half-right and no guesses).

The draft here is a lookup, no second model: the longest end of the text decoded so far (3 to
24 characters) that occurs in the question itself or in a reference text (the pretraining
corpus), and the 16 characters that follow it there. A model that recites a line it stored
follows the corpus for long stretches, so that most of a stored line comes in a few passes;
`python bench/speculative.py` measures the effect on lone questions.

A pass with a guess costs about twice a one-character step on a 2-core CPU, so a guess is
made only on a match of at least 3 characters, and of at least 8 right after a guess whose
first character was wrong (a name the model has no line for follows the corpus in short
stretches only); and a guess is as long as the last one held, doubled (16 after one held
entirely). The first two rules were chosen by counting passes, in a simulation, over the
recitations of 500 training-pair questions and 500 made-up names; what is decoded is the same
whatever the rules.

Only a batch of one is decoded this way: a batch decodes until its slowest row is done, a
made-up name's line takes nearly as many passes as steps, and each pass feeds every row several
characters (a simulation of batches like the server's load found no gain).
"""

from __future__ import annotations

import bisect
from array import array

import torch

from .attention import KVCache
from .decode_step import lean_step, step_weights, supports
from .evaluate import Prediction, _answer
from .model import GPT, Layout
from .precision import autocast
from .vocab import Vocab

DRAFT_CHARS = 16  # characters guessed a pass
SUFFIXES = (24, 16, 12, 8, 6, 4, 3)  # lengths of the decoded text's end looked up, longest first
AFTER_A_MISS = 8  # the shortest end looked up after a guess whose first character was wrong


class Drafter:
    """Guesses of how a text goes on, read off the question and a reference text.

    The reference's positions are kept sorted by the text that follows them (a suffix array cut
    at the longest looked-up length; about half a second to build for the 420 kB corpus), so
    that whether an end of the decoded text occurs in it is a binary search, not a scan."""

    def __init__(self, reference: str, vocab: Vocab, chars: int = DRAFT_CHARS):
        if chars < 1:
            raise ValueError(f"a draft needs at least one character, got {chars}")
        self.reference, self.vocab, self.chars = reference, vocab, chars
        width = max(SUFFIXES)
        self._sorted = array("i", sorted(range(len(reference)), key=lambda i: reference[i : i + width]))

    def _find(self, end: str) -> int:
        """A position of the reference where `end` occurs, or -1."""
        n, ref = len(end), self.reference
        j = bisect.bisect_left(self._sorted, end, key=lambda i: ref[i : i + n])
        return self._sorted[j] if j < len(self._sorted) and ref.startswith(end, self._sorted[j]) else -1

    def draft(self, prompt: str, decoded: str, chars: int | None = None, shortest: int = 3) -> str:
        """What follows the longest end of prompt + decoded (`shortest` to 24 characters) found in
        the prompt or the reference, at most `chars` characters, cut before any character outside
        the vocabulary (it could never be decoded); "" where no such end is found."""
        text = prompt + decoded
        n = self.chars if chars is None else chars
        for length in SUFFIXES:
            if length > len(text) or length < shortest:
                continue
            end = text[-length:]
            at = prompt.find(end)
            where = prompt
            if at < 0 or at + length >= len(prompt):  # not in the prompt, or only as its own end
                at, where = self._find(end), self.reference
            if at >= 0:
                guess = where[at + length : at + length + n]
                ok = 0
                while ok < len(guess) and guess[ok] in self.vocab.stoi:
                    ok += 1
                if ok:
                    return guess[:ok]
        return ""


@torch.no_grad()
def decode_one(model: GPT, vocab: Vocab, prompt: list[int], max_new: int, drafter: Drafter,
               precision: str = "fp32", stats: dict[str, int] | None = None) -> tuple[Prediction, KVCache]:
    """evaluate.decode_into_cache for a single prompt, the same greedy characters (and, to float
    rounding, the same probabilities) in fewer passes. The cache holds the prompt and every decoded
    character but the last at their positions, as decode_into_cache's does; slots after those may
    hold rejected guesses. stats (optional) counts the passes after the prompt's ("passes")."""
    model.eval()
    dev = model.head.weight.device
    P, last_pos = len(prompt), model.max_len - 1
    slots = min(P + max_new - 1, model.max_len)
    cache = model.new_cache(1, slots, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    with autocast(precision, dev):
        logits, _ = model(torch.tensor([prompt], device=dev), layout=Layout(pos=torch.arange(P, device=dev)[None]),
                          cache=cache)
    pr = logits[0, -1].float().softmax(-1)
    gen, probs = [int(pr.argmax())], [float(pr.max())]
    prompt_text = vocab.decode(prompt)
    lean = step_weights(model) if supports(model, precision) else None  # the passes as decoding's steps run
    passes, missed, want = 0, False, drafter.chars
    while gen[-1] != vocab.mask_id and len(gen) < max_new:
        pos = P + len(gen) - 1  # where the last decoded character goes
        # Guess no further than the characters still wanted and the slots there are; past the
        # model's last position the plain path feeds each character at that position, one at a time.
        room = min(max_new - len(gen) - 1, slots - 1 - pos, want)
        # After a guess the model rejected at once, only a longer match is worth a pass's extra cost.
        shortest = AFTER_A_MISS if missed else 3
        guess = drafter.draft(prompt_text, vocab.decode(gen), room, shortest) if room > 0 and pos <= last_pos else ""
        fed = [gen[-1]] + vocab.encode(guess)
        at = torch.arange(len(fed), device=dev)[None] + min(pos, last_pos)
        x = torch.tensor([fed], device=dev)
        if lean is not None:
            logits = lean_step(model, lean, x, at, cache, filled=int(at[0, -1]) + 1)
        else:
            with autocast(precision, dev):
                logits, _ = model(x, layout=Layout(pos=at), cache=cache)
        pr = logits[0].float().softmax(-1)
        p, best = pr.max(-1)
        best_l, p_l = best.tolist(), p.tolist()
        passes += 1
        if guess:
            missed = best_l[0] != fed[1]
            kept = next((j for j in range(len(guess)) if best_l[j] != fed[j + 1]), len(guess))
            # a pass costs more the more it feeds: guess as far as the last guess held, doubled
            want = drafter.chars if kept == len(guess) else max(4, 2 * kept)
        for j, b in enumerate(best_l):  # the model's choice after fed[: j + 1]
            gen.append(b)
            probs.append(p_l[j])
            if b == vocab.mask_id or len(gen) == max_new or j + 1 >= len(fed) or fed[j + 1] != b:
                break
    if stats is not None:
        stats["passes"] = stats.get("passes", 0) + passes
    return _answer(gen, probs, vocab), cache
