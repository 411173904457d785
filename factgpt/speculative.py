"""Greedy decoding in fewer passes: guesses read off a text, checked by the model.

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
follows the corpus for long stretches, so that most of a stored line comes in a few passes, and
a row whose guess held reads on where the guess was found, without another lookup;
`python bench/speculative.py` measures the effect on lone questions and on batches.

A pass with a guess costs about twice a one-character step on a 2-core CPU, so a guess is
made only on a match of at least 3 characters, and of at least 8 right after a guess whose
first character was wrong or a lookup that found nothing (a name the model has no line for
follows the corpus in short stretches only); and a guess is as long as the last one held, doubled (16 after one held
entirely). The first two rules were chosen by counting passes, in a simulation, over the
recitations of 500 training-pair questions and 500 made-up names; what is decoded is the same
whatever the rules.

evaluate.decode_into_cache runs the passes, for a lone question (decode_one) and for batches:
there each pass feeds every row its guess, the rows padded to the longest, and at most
evaluate.PASS_CHARS characters in all; a batch gains once its made-up names are done, which a
line floor (recite.LineFloor) makes early, so that the stored lines left take their guesses.
"""

from __future__ import annotations

import bisect
from array import array

import torch

from .attention import KVCache
from .evaluate import GiveUp, Guesser, Prediction, decode_into_cache
from .model import GPT
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
        return self.draft_at(prompt, decoded, chars, shortest)[0]

    def draft_at(self, prompt: str, decoded: str, chars: int | None = None, shortest: int = 3) -> tuple[str, str, int]:
        """draft(), with the text the guess was read from (the prompt or the reference) and where it
        starts there. The ends are looked up from the shortest: where one does not occur, no longer
        one does (it would end with it), so a name the model is guessing costs a lookup or two."""
        text = prompt + decoded
        n = self.chars if chars is None else chars
        found = None
        for length in sorted(SUFFIXES):
            if length < shortest:
                continue
            if length > len(text):
                break
            end = text[-length:]
            at, where = prompt.find(end), prompt
            if at < 0 or at + length >= len(prompt):  # not in the prompt, or only as its own end
                at, where = self._find(end), self.reference
            if at < 0:
                break
            found = (where, at + length)
        if found is None:
            return "", "", 0
        guess = self.writable(found[0], found[1], n)
        return (guess, found[0], found[1]) if guess else ("", "", 0)

    def writable(self, text: str, start: int, n: int) -> str:
        """text[start : start + n], cut before its first character outside the vocabulary."""
        guess = text[start : start + n]
        ok = 0
        while ok < len(guess) and guess[ok] in self.vocab.stoi:
            ok += 1
        return guess[:ok]


class _Guesses:
    """One batch's guesses: each row's drafts, as long as its last guess held (doubled, 16 after one
    that held entirely), and only on a longer match right after a guess whose first character was
    wrong or a lookup that found nothing (evaluate.Guesser). A row whose last guess held, and whose next character is the one
    that follows the guess where it was read, reads on from there without a search."""

    def __init__(self, drafter: Drafter, vocab: Vocab, prompts: list[list[int]]):
        self.drafter, self.vocab, self.longest = drafter, vocab, drafter.chars
        self.texts = [vocab.decode(p) for p in prompts]
        self.want = [drafter.chars] * len(prompts)
        self.missed = [False] * len(prompts)
        # where each row's last guess was read: (text, where the guess ended, decoded length if it all held)
        self.read: list[tuple[str, int, int] | None] = [None] * len(prompts)

    def guess(self, row: int, decoded: list[int], room: int) -> list[int]:
        n = min(room, self.want[row])
        if n <= 0:
            return []
        last = self.read[row]
        if (last is not None and len(decoded) == last[2] and last[1] < len(last[0])
                and last[0][last[1]] == self.vocab.chars[decoded[-1]]):
            text, start = last[0], last[1] + 1
            guess = self.drafter.writable(text, start, n)
        else:
            shortest = AFTER_A_MISS if self.missed[row] else 3
            guess, text, start = self.drafter.draft_at(self.texts[row], self.vocab.decode(decoded), n, shortest)
            # a row with nothing to guess is likely a name the model is guessing: ask for a long match next
            self.missed[row] = self.missed[row] or not guess
        self.read[row] = (text, start + len(guess), len(decoded) + len(guess) + 1) if guess else None
        return self.vocab.encode(guess)

    def kept(self, row: int, guessed: int, kept: int) -> None:
        self.missed[row] = kept == 0
        # a pass costs more the more it feeds: guess as far as the last guess held, doubled
        self.want[row] = self.drafter.chars if kept == guessed else max(4, 2 * kept)


def guesses(drafter: Drafter, vocab: Vocab, prompts: list[list[int]]) -> Guesser:
    """The guesses of one decoding of `prompts` (evaluate.decode_into_cache's guesser)."""
    return _Guesses(drafter, vocab, prompts)


@torch.no_grad()
def decode_one(model: GPT, vocab: Vocab, prompt: list[int], max_new: int, drafter: Drafter,
               precision: str = "fp32", stats: dict[str, int] | None = None,
               give_up: GiveUp | None = None) -> tuple[Prediction, KVCache]:
    """evaluate.decode_into_cache for a single prompt with the drafter's guesses: the same greedy
    characters (and, to float rounding, the same probabilities) in fewer passes. stats (optional)
    counts the passes after the prompt's ("passes"); give_up as decode_into_cache's."""
    model.eval()
    preds, cache = decode_into_cache(model, vocab, [prompt], max_new, precision, give_up=give_up,
                                     guesser=guesses(drafter, vocab, [prompt]), stats=stats)
    return preds[0], cache
