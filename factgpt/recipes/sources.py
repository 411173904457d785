"""What a recipe's pretraining draws its examples from: cut lines, multi-span corruption,
mixed question-answer pairs, recitation suffixes and copying drills."""

from __future__ import annotations

import math
from typing import Iterator

import torch

from ..batches import Batch, BatchedCorruption, TensorExamples
from ..datasets import QA, NameDataset, documents
from ..errors import InputError
from ..heldout import name_of, to_tsv
from ..lines import change_lines
from ..people import line_name
from ..vocab import MASK, Vocab
from .spec import Recipe, RecipeSpec

class LineLM:
    """Each (cut) line as one example: every character predicts the next; no corruption."""

    def __init__(self, text: str, vocab: Vocab, block_size: int, max_chars: int | None = None,
                 suffixes: list[str] | None = None, read_only_after_mask: bool = False):
        docs = [d[:max_chars] if max_chars else d for d in documents(text)]
        if suffixes is not None:  # appended after the cut (recite: ⁇ and, for training people, the answer)
            docs = [d + s for d, s in zip(docs, suffixes, strict=True)]
        self.x = torch.zeros(len(docs), block_size - 1, dtype=torch.long)
        self.y = torch.zeros_like(self.x)
        for i, d in enumerate(docs):
            ids = torch.tensor(vocab.encode(d[:block_size]), dtype=torch.long)
            n = len(ids) - 1
            self.x[i, :n], self.y[i, :n] = ids[:-1], ids[1:]
        # From the first ⁇ on (recite: the answer), word keys are read, not trained.
        self.read_only = (self.x == vocab.mask_id).cumsum(1) > 0 if read_only_after_mask else None

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, idx: torch.Tensor, gen: torch.Generator) -> Batch:
        return Batch(self.x[idx], self.y[idx], len(idx),
                     read_only=None if self.read_only is None else self.read_only[idx])


class MultiSpanCorruption:
    """Several spans of each (truncated) line masked at once, as in T5's pretraining.

    The truncation is the course's (uniform on [4, 7/8 of the block], capped at the
    line). round(noise_density × length) characters are masked, in
    round(noise/mean_span) spans (at least one) that never touch, of random lengths at
    random places; each span is replaced by one ⁇. The example is the corrupted text, ⁇, then
    every span followed by ⁇, in order; every position predicts the next character,
    as in the course's format, which is the special case of one span without the
    closing ⁇. Many short holes per line ask for more of the line per example than the
    course's one long hole at the end of a short prefix.
    """

    def __init__(self, text: str, vocab: Vocab, block_size: int, max_chars: int | None = None,
                 noise_density: float = 0.15, mean_span: float = 3.0):
        self.vocab, self.block_size = vocab, block_size
        self.noise_density, self.mean_span = noise_density, mean_span
        self.max_trunc = int(block_size * 7 / 8)
        if block_size - self.max_trunc < 3:
            raise InputError("model.block_size", f"multispan corruption needs a block of at least 24, got {block_size}")
        self.docs = [vocab.encode(d[:max_chars] if max_chars else d)[: self.max_trunc] for d in documents(text)]

    def __len__(self) -> int:
        return len(self.docs)

    def spans(self, n: int, gen: torch.Generator) -> list[tuple[int, int]]:
        """(start, length) of the masked spans of a text of n characters, in order."""
        noise = min(max(1, round(n * self.noise_density)), n - 1) if n > 1 else 1
        k = max(1, round(noise / self.mean_span))
        # spans apart, example fits (≥ 1: __init__ leaves room for one span after any truncation)
        k = min(k, noise, n - noise + 1, (self.block_size - n - 1) // 2)
        # noise split into k positive lengths; the n - noise kept characters into k + 1
        # runs whose inner k - 1 are positive (so that no two spans touch)
        cuts = sorted(torch.randperm(noise - 1, generator=gen)[: k - 1].add(1).tolist()) if k > 1 else []
        lengths = [b - a for a, b in zip([0, *cuts], [*cuts, noise])]
        free = n - noise - (k - 1)
        bars = sorted(torch.randint(0, free + 1, (k,), generator=gen).tolist())
        gaps = [b - a for a, b in zip([0, *bars], [*bars, free])]
        out, at = [], 0
        for i, ln in enumerate(lengths):
            at += gaps[i] + (1 if i > 0 else 0)
            out.append((at, ln))
            at += ln
        return out

    def example(self, doc: list[int], gen: torch.Generator) -> list[int]:
        n = min(int(torch.randint(4, self.max_trunc + 1, (1,), generator=gen)), len(doc))
        text, mask = doc[:n], self.vocab.mask_id
        corrupted, targets, prev = [], [], 0
        for start, ln in self.spans(n, gen):
            corrupted += text[prev:start] + [mask]
            targets += text[start : start + ln] + [mask]
            prev = start + ln
        return corrupted + text[prev:] + [mask] + targets

    def batch(self, idx: torch.Tensor, gen: torch.Generator) -> Batch:
        s = torch.full((len(idx), self.block_size), self.vocab.pad_id, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            ids = self.example(self.docs[i], gen)
            s[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return Batch(s[:, :-1], s[:, 1:], len(idx))


class MixedSource:
    """Examples of every line (`views` times each, in the same batch) from `corruption`
    (span corruption or LineLM), interleaved with question-answer examples so that
    they make up `mix_qa` of an epoch. qa_reads_only marks the questions' positions
    read-only for the word-key table."""

    def __init__(self, corruption: BatchedCorruption | LineLM | MultiSpanCorruption,
                 qa: TensorExamples | Counterfactual | None,
                 mix_qa: float,
                 views: int = 1, qa_reads_only: bool = False):
        self.corruption, self.qa, self.views = corruption, qa, int(views)
        self.qa_reads_only = qa_reads_only
        n_docs = len(corruption) * self.views
        self.n_qa = 0 if qa is None or mix_qa == 0 else math.ceil(mix_qa / (1 - mix_qa) * n_docs)
        self.n_docs = n_docs

    def __len__(self) -> int:
        return self.n_docs + self.n_qa

    def epoch(self, batch_size: int, gen: torch.Generator, shuffle: bool = False) -> Iterator[Batch]:
        n_lines = len(self.corruption)
        lines = torch.randperm(n_lines, generator=gen) if shuffle else torch.arange(n_lines)
        # Units: a line with its views (kept together), or one question (coded as −1 − index).
        qa_ids = (torch.randint(len(self.qa), (self.n_qa,), generator=gen) if self.n_qa
                  else torch.empty(0, dtype=torch.long))
        units = torch.cat([lines, -1 - qa_ids])
        if self.n_qa:  # spread the questions over the epoch
            units = units[torch.randperm(len(units), generator=gen)]
        sizes = torch.where(units >= 0, self.views, 1)
        flat = torch.repeat_interleave(units, sizes)
        for i in range(0, len(flat), batch_size):
            chunk = flat[i : i + batch_size]
            doc_idx, qa_idx = chunk[chunk >= 0], -1 - chunk[chunk < 0]
            xs, ys, ros = [], [], []
            if len(doc_idx):
                b = self.corruption.batch(doc_idx, gen)
                xs.append(b.x)
                ys.append(b.y)
                ros.append(b.read_only if b.read_only is not None else torch.zeros_like(b.x, dtype=torch.bool))
            if len(qa_idx):
                if isinstance(self.qa, TensorExamples):
                    xs.append(self.qa.x[qa_idx])
                    ys.append(self.qa.y[qa_idx])
                else:  # examples drawn anew each time (counterfactual answers)
                    b = self.qa.batch(qa_idx, gen)
                    xs.append(b.x)
                    ys.append(b.y)
                ros.append(torch.full_like(xs[-1], self.qa_reads_only, dtype=torch.bool))
            x = torch.cat(xs)
            ro = torch.cat(ros)
            if not ro.any():
                ro = None
            yield Batch(x, torch.cat(ys), len(chunk), read_only=ro)


def recipe_source(recipe: Recipe, corpus_text: str, vocab: Vocab, qa_rows: list[QA], block_size: int) -> MixedSource:
    spec: RecipeSpec = recipe.spec
    text = change_lines(corpus_text, recipe.profile.data)
    max_chars = recipe.profile.data.max_chars
    if spec.recite:
        lm = LineLM(text, vocab, block_size, max_chars, recite_suffixes(corpus_text, qa_rows),
                    read_only_after_mask=spec.qa_reads_only)
        cf = Counterfactual(text, corpus_text, qa_rows, vocab, block_size, max_chars) if spec.counterfactual else None
        # Counterfactual rows never write the key table (qa_reads_only marks the whole row).
        return MixedSource(lm, cf, spec.counterfactual, spec.views, qa_reads_only=cf is not None)
    lines: BatchedCorruption | LineLM | MultiSpanCorruption
    if spec.objective == "lm":
        lines = LineLM(text, vocab, block_size, max_chars)
    elif spec.objective == "multispan":
        lines = MultiSpanCorruption(text, vocab, block_size, max_chars, spec.noise_density, spec.mean_span)
    else:
        lines = BatchedCorruption(text, vocab, block_size, max_chars=max_chars)
    qa = TensorExamples(NameDataset(vocab, to_tsv(qa_rows), block_size)) if spec.mix_qa > 0 else None
    return MixedSource(lines, qa, spec.mix_qa, spec.views, spec.qa_reads_only)


def recite_suffixes(corpus_text: str, qa_rows: list[QA]) -> list[str]:
    """What follows each line: ⁇, then for a person of qa_rows their answer and ⁇."""
    answers = {name_of(r.question): r.answer for r in qa_rows}
    return [MASK + (answers[n] + MASK if n in answers else "")
            for n in map(line_name, documents(corpus_text))]


class Counterfactual:
    """Copying drills: a training person's (changed, cut) line with its birthplace
    replaced by another training answer, then ⁇, that answer and ⁇. Remembering the
    person's true answer is wrong here; copying it from the line is right, here and in
    the true lines. Only the answer characters are targets."""

    def __init__(self, text: str, corpus_text: str, qa_rows: list[QA], vocab: Vocab, block_size: int,
                 max_chars: int | None):
        answers = {name_of(r.question): r.answer for r in qa_rows}
        self.vocab, self.block_size = vocab, block_size
        self.pool = sorted({r.answer for r in qa_rows})
        self.items: list[tuple[str, str, str]] = []  # (line before the place, place, line after it)
        for before, after in zip(documents(corpus_text), documents(text)):
            name = line_name(before)
            ans = answers.get(name)
            cut = after[:max_chars] if max_chars else after
            at = cut.find(ans, cut.find(name) + len(name)) if ans else -1
            if at > 0:
                self.items.append((cut[:at], ans, cut[at + len(ans):]))

    def __len__(self) -> int:
        return len(self.items)

    def batch(self, idx: torch.Tensor, gen: torch.Generator) -> Batch:
        T = self.block_size - 1
        x = torch.zeros(len(idx), T, dtype=torch.long)
        y = torch.zeros_like(x)
        picks = torch.randint(len(self.pool), (len(idx),), generator=gen).tolist()
        for row, (i, k) in enumerate(zip(idx.tolist(), picks)):
            head, ans, tail = self.items[i]
            new = self.pool[k] if self.pool[k] != ans else self.pool[(k + 1) % len(self.pool)]
            line = self.vocab.encode(head + new + tail + MASK)
            out = self.vocab.encode(new + MASK)
            ids = (line + out)[: self.block_size]
            n = len(ids) - 1
            x[row, :n] = torch.tensor(ids[:-1])
            tgt = torch.tensor(ids[1:])
            tgt[: len(line) - 1] = 0  # only the answer (from the ⁇ on) is learned
            y[row, :n] = tgt
        return Batch(x, y, len(idx))
