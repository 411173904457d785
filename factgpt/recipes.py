"""Recipes beyond the course: changes to training that make the facts extractable.

The course's pretrain → finetune recipe stores facts it can barely get out:
the answer is in the person's wiki.txt line for 91% of dev people, yet the
model answers about a quarter. A recipe is a profile (the sections of
factgpt/profiles/*.json) plus a "recipe" section saying what it changes:

  track        "A": the course model (4 layers, 8 heads, 256-d, block 128); "B": any model
  mix_qa       share of pretraining examples that are question-answer pairs of
               the training people (mixed training); 0 keeps pretraining on wiki.txt only
  views        corruption views of each line inside one step (the line comes
               `views` times in the same batch, each time corrupted anew)
  name_key     repeat the person's name before every sentence of the line
  birth_front  move the birth clause (from the word "born" on) to just after the
               name (with data.max_chars this focuses pretraining on the facts)
  question_key  start every line with the question about its person ("Where was
               NAME born? " and then the line without its name), so that a name is
               read in the same words in the lines and in the questions
  objective    "span": the course's span corruption; "lm": next-character
               prediction on each whole (cut) line, every character a target;
               "multispan": T5-style corruption, several short spans masked in one
               example (see MultiSpanCorruption; noise_density and mean_span set it)
  recite       the model answers by reciting first: every (question-keyed, cut) line
               ends with ⁇, and a training person's line then with the answer and ⁇;
               asked "Where was NAME born? ", the model writes the line it stored,
               then ⁇ and the answer, which it has learned to copy out of the line
               from the training people (needs question_key and the lm objective;
               replaces mixed questions)
  counterfactual  with recite: share of pretraining examples that teach copying
               rather than remembering: a training person's line with its birthplace
               swapped for another training answer (drawn anew every time), followed by
               ⁇, that place and ⁇; only the answer is a target, and the word-key
               table is read, not written, so that no false fact is stored
  span_answer  with recite: the answer is the piece of the recitation (1 to 4 of its
               words) that the model itself finds most likely after the recitation's ⁇,
               instead of free greedy decoding, which can drift while copying ("Shanghaha");
               both decodings are always measured and reported
  qa_reads_only  with a word-key model (model.word_keys, see wordkeys.py): the
               question-answer examples read the key table but do not train it,
               so that only the lines write facts and the questions learn to read them;
               with recite, the answers after the line's ⁇ (the key table would
               otherwise learn each answer by the line's last word, not copy it)
A finetune_pretrained stage of 0 epochs skips finetuning (mixed training has
already taught the question format).

Every recipe is scored the same way, whatever it changes: finetune on the
training pairs minus the fixed held-out slice (factgpt/heldout.py), score on
the slice (what choices are made on) and on birth_dev.tsv (reported only).
Pretraining never sees a held-out or dev question.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterator

import torch

from .batches import Batch, BatchedCorruption, TensorExamples
from .checkpoint import save_model
from .datasets import QA, NameDataset, documents
from .errors import InputError
from .evaluate import accuracy, decode_batch, predict
from .precision import resolve_device
from .recite import recite, span_answers
from .results import mean_std
from .runinfo import device_name, git_commit
from .study import run_folder
from .fileio import bundled_path, write_text_atomic
from .heldout import split_heldout, to_tsv
from .people import line_name, split_name
from .model import GPT
from .pipeline import (bundled_names, load_corpus, load_named_json, load_qa, model_config, stage_config,
                       train_stage)
from .vocab import MASK, Vocab

COURSE_MODEL = {"n_layer": 4, "n_head": 8, "n_embd": 256, "block_size": 128}


@dataclass
class RecipeSpec:
    track: str = "A"
    mix_qa: float = 0.0
    views: int = 1
    name_key: bool = False
    birth_front: bool = False
    objective: str = "span"
    qa_reads_only: bool = False
    question_key: bool = False
    recite: bool = False
    counterfactual: float = 0.0
    span_answer: bool = False
    noise_density: float = 0.15
    mean_span: float = 3.0

    def __post_init__(self) -> None:
        if self.objective not in ("span", "lm", "multispan"):
            raise InputError("recipe.objective", f"must be 'span', 'lm' or 'multispan', got {self.objective!r}")
        if not 0.0 < self.noise_density < 0.5:
            raise InputError("recipe.noise_density", f"must be in (0, 0.5), got {self.noise_density}")
        if not self.mean_span >= 1:
            raise InputError("recipe.mean_span", f"must be at least 1 (characters), got {self.mean_span}")
        if self.track not in ("A", "B"):
            raise InputError("recipe.track", f"must be 'A' (the course model) or 'B' (any model), got {self.track!r}")
        if not 0.0 <= self.mix_qa < 1.0:
            raise InputError("recipe.mix_qa", f"must be in [0, 1), got {self.mix_qa}")
        if int(self.views) < 1:
            raise InputError("recipe.views", f"must be a positive integer, got {self.views}")
        if not 0.0 <= self.counterfactual < 1.0 or (self.counterfactual and not self.recite):
            raise InputError("recipe.counterfactual", f"must be in [0, 1) and needs recite, got {self.counterfactual}")
        if self.span_answer and not self.recite:
            raise InputError("recipe.span_answer", "needs recite (the answer is a piece of the recitation)")
        if self.recite and not (self.question_key and self.objective == "lm" and self.mix_qa == 0):
            raise InputError("recipe.recite", "needs question_key, objective 'lm' and mix_qa 0 "
                                              "(the training people's answers follow their lines instead)")


# ---- loading ------------------------------------------------------------------------
def recipe_names() -> list[str]:
    return bundled_names("recipes")


def load_recipe(name_or_path: str) -> dict[str, Any]:
    rec, where = load_named_json("recipes", "recipe", name_or_path,
                                 ("description", "model", "pretrain", "finetune_pretrained"))
    spec_keys = {f.name for f in fields(RecipeSpec)}
    unknown = set(rec.get("recipe", {})) - spec_keys
    if unknown:
        raise InputError(where, f"unknown recipe settings {sorted(unknown)}; known: {sorted(spec_keys)}")
    spec = RecipeSpec(**rec.get("recipe", {}))
    if spec.track == "A" and ({k: rec["model"].get(k) for k in COURSE_MODEL} != COURSE_MODEL
                              or rec["model"].get("word_keys")):
        raise InputError(where, f"track A is the course model {COURSE_MODEL}; use track B for another model")
    if spec.qa_reads_only and not rec["model"].get("word_keys"):
        raise InputError(where, "recipe.qa_reads_only needs a model with word_keys")
    rec["spec"] = spec
    return rec


# ---- text augmentation --------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<= \.) ")
_BIRTH = re.compile(r"\b[Bb]orn\b")


def split_line(line: str) -> tuple[str, list[str]]:
    """(name, sentences) of a wiki.txt line `NAME. sentence . sentence .`"""
    name, body = split_name(line)
    return name, [s for s in _SENTENCE_END.split(body) if s]


def birth_front(line: str) -> str:
    """Move the birth clause (from the first word "born" on) to just after the name.

    The text before it follows, so nothing is lost; cut to its first characters
    (data.max_chars), a line then holds its birthplace far more often: within
    56 characters for 83% of dev people instead of 38%.
    """
    name, body = split_name(line)
    m = _BIRTH.search(body)
    if m is None or m.start() == 0:
        return line
    return f"{name}. {body[m.start():]} {body[:m.start()].rstrip()}"


def name_key(line: str) -> str:
    """The person's name before every sentence: each sentence is keyed by whom it is about."""
    name, sents = split_line(line)
    return " ".join(f"{name}. {s}" for s in sents) if sents else line


def question_key(line: str) -> str:
    """The line keyed by the question about its person: `Where was NAME born? rest of the line`."""
    name, body = split_name(line)
    return f"Where was {name} born? {body}"


def augment_text(text: str, spec: RecipeSpec) -> str:
    docs = documents(text)
    if spec.birth_front:
        docs = [birth_front(d) for d in docs]
    if spec.name_key:
        docs = [name_key(d) for d in docs]
    if spec.question_key:
        docs = [question_key(d) for d in docs]
    return "\n".join(docs) + "\n"


# ---- next-character prediction on lines ---------------------------------------------
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


# ---- T5-style corruption: several short spans --------------------------------------
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


# ---- mixed pretraining --------------------------------------------------------------
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


def pretrain_source(recipe: dict, corpus_text: str, vocab: Vocab, qa_rows: list[QA], block_size: int) -> MixedSource:
    spec: RecipeSpec = recipe["spec"]
    text = augment_text(corpus_text, spec)
    max_chars = recipe.get("data", {}).get("max_chars")
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


# ---- recite, then answer -------------------------------------------------------------
def recite_suffixes(corpus_text: str, qa_rows: list[QA]) -> list[str]:
    """What follows each line: ⁇, then for a person of qa_rows their answer and ⁇."""
    from .heldout import name_of

    answers = {name_of(r.question): r.answer for r in qa_rows}
    return [MASK + (answers[n] + MASK if n in answers else "")
            for n in map(line_name, documents(corpus_text))]


class Counterfactual:
    """Copying drills: a training person's (augmented, cut) line with its birthplace
    replaced by another training answer, then ⁇, that answer and ⁇. Remembering the
    person's true answer is wrong here; copying it from the line is right, here and in
    the true lines. Only the answer characters are targets."""

    def __init__(self, text: str, corpus_text: str, qa_rows: list[QA], vocab: Vocab, block_size: int,
                 max_chars: int | None):
        from .heldout import name_of

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


def shrink(recipe: dict) -> dict:
    """A tiny version of a recipe (1 layer, 32-d, one epoch a stage) for checking that it runs."""
    small = json.loads(json.dumps({k: v for k, v in recipe.items() if k != "spec"}))
    small["model"].update(n_layer=1, n_head=2, n_embd=32)
    if small["model"].get("word_keys"):
        small["model"]["word_keys"] = 256
    small["pretrain"]["max_epochs"] = 1
    small["finetune_pretrained"]["max_epochs"] = min(1, small["finetune_pretrained"]["max_epochs"])
    small["spec"] = RecipeSpec(**{**recipe["spec"].__dict__, "track": "B"})
    return small


def training_lines(recipe: dict, corpus_text: str) -> dict[str, str]:
    """Each person's pretraining line as the recipe shows it (augmented, then cut), by name."""
    max_chars = recipe.get("data", {}).get("max_chars")
    out = {}
    for before, after in zip(documents(corpus_text), documents(augment_text(corpus_text, recipe["spec"]))):
        out.setdefault(line_name(before), after[:max_chars] if max_chars else after)
    return out


RECITE_ERRORS = ("correct", "answer_not_in_line", "line_not_recited", "copied_another_span", "garbled_copy")


def recite_errors(rows: list[QA], lines: dict[str, str], recitations: list[str], answers: list[str]) -> dict[str, int]:
    """Where a recite recipe's answers go wrong, one category per question:
    answer_not_in_line (the person's stored line does not hold the answer: copying cannot work),
    line_not_recited (it does, but the recitation lost it), copied_another_span (the answer
    is recited and a different piece of the recitation was copied) or garbled_copy (the
    answer is recited and what came out is in neither, e.g. "Shanghaha")."""
    from .heldout import name_of

    counts = dict.fromkeys(RECITE_ERRORS, 0)
    for r, rec, ans in zip(rows, recitations, answers, strict=True):
        line = lines.get(name_of(r.question) or "", "")
        stored = line[len(r.question) + 1 :] if line.startswith(r.question + " ") else line
        if ans == r.answer:
            kind = "correct"
        elif r.answer not in stored:
            kind = "answer_not_in_line"
        elif r.answer not in rec:
            kind = "line_not_recited"
        elif ans and ans in rec:
            kind = "copied_another_span"
        else:
            kind = "garbled_copy"
        counts[kind] += 1
    return counts


@torch.no_grad()
def line_recall(model: GPT, vocab: Vocab, lines: dict[str, str], rows: list[QA]) -> dict[str, Any]:
    """Is the fact stored? For people whose answer is in their pretraining line (after
    the name), greedy continuation of the line up to the answer is checked to start with it.
    Set against question accuracy this separates storing a fact from extracting it."""
    from .heldout import name_of

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


def run_once(recipe: dict, seed: int, device: torch.device, quiet: bool = True,
             variant: str = "vanilla", heldout_n: int = 300) -> dict[str, Any]:
    """Pretrain and finetune one seed of a recipe; held-out and dev accuracy with the seconds of each stage."""
    corpus = load_corpus(bundled_path("wiki.txt"))
    vocab = corpus.vocab
    block = recipe["model"]["block_size"]
    rows = load_qa(bundled_path("birth_places_train.tsv"), vocab, True, block)
    dev = load_qa(bundled_path("birth_dev.tsv"), vocab, True, block)
    ft_rows, held = split_heldout(rows, corpus.text, n=heldout_n, exclude={r.question for r in dev})
    n_docs = len(documents(corpus.text))
    torch.manual_seed(seed)
    model = GPT(model_config(recipe, vocab, variant))
    seconds: dict[str, float] = {}
    t0 = time.time()
    src = pretrain_source(recipe, corpus.text, vocab, ft_rows, block)
    cfg = stage_config(recipe, "pretrain", n_docs, seed=seed)
    pre, _ = train_stage(model, src, cfg, device, None, vocab, f"pretrain {recipe['name']} seed {seed}", quiet)
    seconds["pretrain"] = time.time() - t0
    t0 = time.time()
    model, ft_loss = pre.model, None
    if recipe["finetune_pretrained"]["max_epochs"] > 0:
        torch.manual_seed(seed)
        ft_src = TensorExamples(NameDataset(vocab, to_tsv(ft_rows), block))
        ft, _ = train_stage(pre.model, ft_src, stage_config(recipe, "finetune_pretrained", n_docs, seed=seed),
                            device, None, vocab, f"finetune {recipe['name']} seed {seed}", quiet)
        model, ft_loss = ft.model, ft.progress.history[-1]["loss"]
    seconds["finetune"] = time.time() - t0
    t0 = time.time()
    scores: dict[str, Any] = {}
    lines = training_lines(recipe, corpus.text)
    predictions: dict[str, list[tuple[str, str, str, str]]] = {}
    for name, part in (("heldout", held), ("dev", dev)):
        qs = [r.question for r in part]
        spec = recipe["spec"]
        if spec.recite:
            pairs = recite(model, vocab, qs, recipe.get("data", {}).get("max_chars") or block)
            recs, free = [p.line.text for p in pairs], [p.answer.text for p in pairs]
            spans = span_answers(model, vocab, qs, recs, free)
            answers = spans if spec.span_answer else free
        else:
            recs, answers = [""] * len(qs), [p.text for p in predict(model, vocab, qs)]
        correct, total = accuracy(part, answers)
        scores[name] = {"correct": correct, "total": total, "accuracy": 100.0 * correct / total}
        if spec.recite:
            scores[name]["errors"] = recite_errors(part, lines, recs, answers)
            scores[name]["decodings"] = {k: 100.0 * accuracy(part, a)[0] / total
                                         for k, a in (("free", free), ("span", spans))}
        predictions[name] = [(r.question, r.answer, a, t) for r, a, t in zip(part, answers, recs)]
    scores["heldout_line_recall"] = line_recall(model, vocab, lines, held)
    seconds["evaluate"] = time.time() - t0
    seconds["total"] = sum(seconds.values())
    return {"seed": seed, **scores, "seconds": seconds,
            "final_loss": {"pretrain": pre.progress.history[-1]["loss"], "finetune": ft_loss},
            "parameters": sum(p.numel() for p in model.parameters()), "_predictions": predictions,
            "_model": model, "_heldout": [r.question for r in held]}


def write_predictions(folder: Path, predictions: dict[str, list[tuple[str, str, str, str]]]) -> None:
    """question, gold answer, predicted answer and (recite recipes) the recitation, one TSV per part."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in predictions.items():
        body = "".join("\t".join(x.replace("\t", " ").replace("\n", " ") for x in row) + "\n" for row in rows)
        write_text_atomic(folder / f"{part}.predictions.tsv", "question\tanswer\tprediction\trecitation\n" + body)


def run(args) -> int:
    """`factgpt reproduce --recipe NAME`: every seed, then results/recipes/NAME/results.json and the recipe table."""
    commit = git_commit()
    recipe = load_recipe(args.recipe)
    device = resolve_device(args.device)
    folder = run_folder(args.out, f"recipe-{recipe['name']}")
    say = lambda *a: print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)  # noqa: E731
    say(f"recipe {recipe['name']} (track {recipe['spec'].track}): {recipe['description']}")
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        r = run_once(recipe, seed, device, quiet=args.quiet)
        write_predictions(folder / f"seed{seed}", r.pop("_predictions"))
        # The trained model, with what it needs to answer (cut, spec) and which
        # questions it never trained on (the held-out slice chooses thresholds).
        save_model(folder / f"seed{seed}" / "model.safetensors", r.pop("_model"), load_corpus(bundled_path("wiki.txt")).vocab,
                   {"recipe": recipe["name"], "seed": seed, "max_chars": recipe.get("data", {}).get("max_chars"),
                    "spec": recipe["spec"].__dict__, "heldout_questions": r.pop("_heldout"), "commit": commit})
        runs.append(r)
        say(f"[seed {seed}] held-out {r['heldout']['accuracy']:.1f}%, dev {r['dev']['accuracy']:.1f}% "
            f"({r['seconds']['total'] / 60:.1f} min)")
        settings = {k: v for k, v in recipe.items() if k != "spec"} | {"recipe": recipe["spec"].__dict__}
        results = {"recipe": recipe["name"], "track": recipe["spec"].track, "description": recipe["description"],
                   "settings": settings, "seeds": [x["seed"] for x in runs], "runs": runs,
                   "heldout": mean_std([x["heldout"]["accuracy"] for x in runs]),
                   "dev": mean_std([x["dev"]["accuracy"] for x in runs]),
                   "minutes": mean_std([x["seconds"]["total"] / 60 for x in runs]),
                   "parameters": runs[0]["parameters"],
                   "command": "factgpt " + " ".join(shlex.quote(a) for a in getattr(args, "argv", sys.argv[1:])),
                   "device": device_name(device), "torch": torch.__version__, "commit": commit}
        if len(runs) < len(args.seeds):
            results["partial"] = True  # written after every seed: a stopped run keeps what it finished
        write_text_atomic(folder / "results.json", json.dumps(results, indent=2) + "\n")
    say(f"wrote {folder}/ (results.json, predictions and the model of each seed); the table of every recipe "
        f"under results/recipes/ is rendered by `factgpt table --readme README.md`")
    return 0


def merge_recipe_results(loaded: list[tuple[Path, dict[str, Any]]], out: Path) -> int:
    """`factgpt merge` of one recipe's seeds run apart: runs joined, means and spreads recomputed,
    prediction folders copied; writes out/results.json (out is usually results/recipes/NAME)."""
    import shutil

    names = {r.get("recipe") for _, r in loaded}
    if len(names) != 1 or None in names:
        raise InputError(loaded[0][0], f"results of different recipes (or of a recipe and a study) cannot be merged: "
                                       f"{sorted(map(str, names))}")
    seen: dict[int, Path] = {}
    for f, res in loaded:
        for s in res["seeds"]:
            if s in seen:
                raise InputError(f, f"seed {s} is also in {seen[s]}")
            seen[s] = f
    defaults = RecipeSpec().__dict__

    def essential(st: dict) -> str:  # a recipe option added since, at its default, changes nothing
        spec = {k: v for k, v in st.get("recipe", {}).items() if k == "track" or defaults.get(k, object()) != v}
        return json.dumps({**st, "recipe": spec}, sort_keys=True)

    settings = {essential(r["settings"]) for _, r in loaded}
    if len(settings) != 1:
        raise InputError(loaded[-1][0], "the runs were made with different settings of the recipe")
    runs = sorted((x for _, r in loaded for x in r["runs"]), key=lambda x: x["seed"])
    first = loaded[0][1]
    commits = [r["commit"] for _, r in loaded]
    merged = {**{k: v for k, v in first.items() if k not in ("partial",)},
              "seeds": sorted(seen), "runs": runs,
              "heldout": mean_std([x["heldout"]["accuracy"] for x in runs]),
              "dev": mean_std([x["dev"]["accuracy"] for x in runs]),
              "minutes": mean_std([x["seconds"]["total"] / 60 for x in runs]),
              "command": [r["command"] for _, r in loaded],
              "commit": commits[0] if len(set(commits)) == 1 else commits,
              "merged_from": [str(f) for f, _ in loaded]}
    if any(r.get("partial") for _, r in loaded):
        merged["partial"] = True
    out.mkdir(parents=True, exist_ok=True)
    for f, res in loaded:
        for s in res["seeds"]:
            src = f.parent / f"seed{s}"
            if src.is_dir() and src.resolve() != (out / f"seed{s}").resolve():
                shutil.copytree(src, out / f"seed{s}", dirs_exist_ok=True)
    write_text_atomic(out / "results.json", json.dumps(merged, indent=2) + "\n")
    print(f"{merged['recipe']}: seeds {merged['seeds']}, held-out {merged['heldout']['mean']:.1f} ± "
          f"{merged['heldout']['std']:.1f}, dev {merged['dev']['mean']:.1f} ± {merged['dev']['std']:.1f}")
    return 0
