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

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .attention import KVCache
from .evaluate import MAX_NEW, GiveUp, Prediction, decode_batch, decode_into_cache
from .model import GPT, Layout
from .speculative import Drafter, guesses
from .vocab import MASK, Vocab


@dataclass
class Recitation:
    line: Prediction  # the recited line (text and the probability of each character)
    answer: Prediction | None  # the free answer decoded after the line and ⁇ (None: not decoded)


@torch.no_grad()
def recite(model: GPT, vocab: Vocab, questions: list[str], max_chars: int, batch_size: int = 512,
           answers: bool = True) -> list[Recitation]:
    """Greedy decoding of each question's line from "QUESTION ", stopped at ⁇ or at the
    line's cut (max_chars counts the question too), then (answers) of the answer after ⁇."""
    model.eval()
    out: list[Recitation] = []
    for s in range(0, len(questions), batch_size):
        qs = questions[s : s + batch_size]
        lines, _ = _recite_batch(model, vocab, qs, max_chars)
        got = answers_after(model, vocab, qs, [ln.text for ln in lines]) if answers else [None] * len(qs)
        out += [Recitation(ln, a) for ln, a in zip(lines, got)]
    return out


@dataclass(frozen=True)
class LineFloor:
    """Stop reciting a line once its line score can no longer reach `threshold`, whatever follows.

    A refusal for want of a line is decided by the line score alone (grounded.AbstentionRule), so
    once it is certain the rest of the line is not needed. For "line_min" that is the first
    character less likely than the threshold. For "line_mean", the geometric mean of the line's
    character probabilities: a line of room characters at most, whose characters so far have the
    log-probability S, ends with a mean of at most exp(S / room), the later characters adding
    nothing above zero; once that is below the threshold (less a margin for float rounding), the
    line is refused, and the mean of the characters recited so far, exp(S / n) with n <= room,
    is below it too. A name the model never saw fails within a few characters."""

    score: str
    threshold: float

    MARGIN = 1e-6  # log-probability: a row gives up only clearly past the floor

    def __post_init__(self) -> None:
        if self.score not in ("line_min", "line_mean"):
            raise ValueError(f"a line floor is on line_min or line_mean, not {self.score!r}")

    def give_up(self, rooms: list[int]) -> GiveUp:
        if self.score == "line_min":
            return lambda rows, logp_sum, p: p < self.threshold
        floor = torch.tensor(rooms, dtype=torch.float64) * math.log(max(self.threshold, 1e-30)) - self.MARGIN
        return lambda rows, logp_sum, p: logp_sum < floor.to(logp_sum.device)[rows]


def _recite_batch(model: GPT, vocab: Vocab, qs: list[str], max_chars: int, drafter: Drafter | None = None,
                  floor: LineFloor | None = None) -> tuple[list[Prediction], KVCache | None]:
    """One batch's recited lines, each cut to its own room, and the decoding's key/value cache
    (None where no question leaves room to recite). Each row's room ends before the decoding's
    last step (one more is run to see whether ⁇ follows), so every recited character was fed back
    into the cache: slots 0 .. len(QUESTION ) + len(line) - 1 of a row hold `QUESTION LINE`.
    drafter: the lines are decoded with its guesses (speculative.py: the same characters).
    floor: a line stops where its line score can no longer reach the floor (LineFloor)."""
    first = [vocab.encode(q + " ") for q in qs]
    room = _room(model, first, max_chars)
    if max(room) == 0:
        return [Prediction("", 1.0, 0.0)] * len(qs), None
    raw, cache = decode_into_cache(model, vocab, first, max(room) + 1, limits=[n + 1 for n in room],
                                   give_up=floor.give_up(room) if floor is not None else None,
                                   guesser=guesses(drafter, vocab, first) if drafter is not None else None)
    return [_cut(p, n) for p, n in zip(raw, room)], cache


@torch.no_grad()
def answers_after(model: GPT, vocab: Vocab, questions: list[str], lines: list[str]) -> list[Prediction]:
    """The free answer of each question after its recited line and ⁇."""
    model.eval()
    prompts = [vocab.encode(q + " " + ln + MASK) for q, ln in zip(questions, lines)]
    # A line cut near the model's length leaves an answer less room than MAX_NEW (its answer is cut
    # there), one that fills it none (an empty answer).
    fit = [i for i, p in enumerate(prompts) if len(p) <= model.max_len]
    out = [Prediction("", 0.0, 0.0)] * len(prompts)
    if fit:
        got = decode_batch(model, vocab, [prompts[i] for i in fit], MAX_NEW)
        for i, a in zip(fit, got):
            out[i] = _cut(a, model.max_len - len(prompts[i]) + 1)
    return out


def _room(model: GPT, prompts: list[list[int]], max_chars: int) -> list[int]:
    """How many characters of each line to recite after its prompt: up to max_chars in all (the
    question counts), and no further than the model predicts (max_len - len(prompt) + 1), each row
    on its own, whatever other rows share its batch."""
    return [max(0, min(max_chars - len(p), model.max_len - len(p) + 1)) for p in prompts]


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
               batch_size: int = 256, prune: bool = True,
               stats: dict[str, int] | None = None) -> list[tuple[str, float] | None]:
    """best_spans_reference's answer with far less work, the same up to float rounding.

    Three savings. Each question's prompt `QUESTION RECITATION⁇` goes through the model once,
    into a key/value cache that its candidates then read. A candidate that begins
    another ("Paris" of "Paris, France") is read off that longer one: the model's
    distribution after "Paris" in "Paris, France" gives both the "," that continues it and
    the ⁇ that would close "Paris". So each question runs only its longest candidates (its
    carriers), a few characters each, instead of thirty-odd whole sequences.
    And (prune) a carrier is run only if it can still win: a span's score is its first
    character's log-probability plus terms that are never positive, so a carrier whose first
    character is already less likely than the best span found so far holds no span that could
    beat it. The carrier with the likeliest first character runs first, the others only if
    their first character clears its best span; a model that knows the answer runs one or two.
    stats (optional) counts the carrier rows run ("rows") and those pruned ("pruned").
    recite_and_spans saves the prompt pass too, reading the prompts out of the recitation's cache.
    """
    model.eval()
    dev = next(model.parameters()).device
    _count_into(stats)
    cands = _Candidates.of(model, vocab, questions, recitations)
    scores: list[dict[str, float]] = [{} for _ in questions]
    # Questions in groups whose carriers make about batch_size rows.
    groups, group, rows_in = [], [], 0
    for i in range(len(questions)):
        if not cands.carriers[i]:
            continue
        if group and rows_in + len(cands.carriers[i]) > batch_size:
            groups.append(group)
            group, rows_in = [], 0
        group.append(i)
        rows_in += len(cands.carriers[i])
    if group:
        groups.append(group)
    for g in groups:
        P = max(len(cands.prompts[i]) for i in g)
        S = max(len(c) for i in g for c in cands.carriers[i])
        x = torch.zeros(len(g), P, dtype=torch.long)
        for r, i in enumerate(g):
            x[r, : len(cands.prompts[i])] = torch.tensor(cands.prompts[i])
        lens = torch.tensor([len(cands.prompts[i]) for i in g])
        cache = model.new_cache(len(g), P + S)
        logits, _ = model(x.to(dev), layout=Layout(pos=torch.arange(P, device=dev).expand(len(g), P)), cache=cache)
        first = torch.log_softmax(logits[torch.arange(len(g)), (lens - 1).to(dev)].float(), dim=-1).cpu()
        _score_group(model, vocab, g, cache, lens, first, cands, scores, prune, stats)
    return cands.best(scores)


@dataclass
class _Candidates:
    """Each question's prompt `QUESTION RECITATION⁇`, its candidate spans that fit the model after
    it (in the reference's order) and its carriers (the candidates no longer one begins with)."""

    prompts: list[list[int]]
    spans_of: list[list[str]]
    carriers: list[list[str]]

    @classmethod
    def of(cls, model: GPT, vocab: Vocab, questions: list[str], recitations: list[str]) -> "_Candidates":
        prompts = [vocab.encode(q + " " + rec + MASK) for q, rec in zip(questions, recitations, strict=True)]
        spans_of, carriers = [], []
        for i, rec in enumerate(recitations):
            fit = [sp for sp in recitation_spans(rec) if len(prompts[i]) + len(sp) + 1 <= model.max_len]
            spans_of.append(fit)
            own: list[str] = []
            for sp in sorted(fit, key=len, reverse=True):
                if not any(c.startswith(sp) for c in own):
                    own.append(sp)
            carriers.append(own)
        return cls(prompts, spans_of, carriers)

    def best(self, scores: list[dict[str, float]]) -> list[tuple[str, float] | None]:
        """Each question's best scored span; a span left unscored was pruned, so below the best."""
        out: list[tuple[str, float] | None] = []
        for i, spans in enumerate(self.spans_of):
            best = None
            for sp in spans:  # the reference's order: the first of equal scores wins
                if sp in scores[i] and (best is None or scores[i][sp] > best[1]):
                    best = (sp, scores[i][sp])
            out.append(best)
        return out


def _count_into(stats: dict[str, int] | None) -> None:
    if stats is not None:
        stats.setdefault("rows", 0)
        stats.setdefault("pruned", 0)


def _score_group(model: GPT, vocab: Vocab, g: list[int], cache, lens: torch.Tensor, first: torch.Tensor,
                 cands: _Candidates, scores: list[dict[str, float]], prune: bool,
                 stats: dict[str, int] | None) -> None:
    """Score the carriers of the questions g, whose prompts are in cache rows 0.. (lens: the
    prompts' lengths; first: the log-probabilities after each prompt's ⁇), pruned or not."""
    mask_id = vocab.stoi[MASK]
    dev = next(model.parameters()).device
    stats = stats if stats is not None else {"rows": 0, "pruned": 0}  # the callers start the counts
    rows = [(r, i, c, float(first[r, vocab.stoi[c[0]]])) for r, i in enumerate(g) for c in cands.carriers[i]]
    if not prune:
        _score_carriers(model, vocab, rows, first, cache, lens, cands.spans_of, scores, mask_id, dev)
        stats["rows"] += len(rows)
        return
    # Round one: each question's carrier with the likeliest first character.
    lead: dict[int, tuple[int, int, str, float]] = {}
    for row in rows:
        if row[1] not in lead or row[3] > lead[row[1]][3]:
            lead[row[1]] = row
    _score_carriers(model, vocab, list(lead.values()), first, cache, lens, cands.spans_of, scores, mask_id, dev)
    # Round two: the carriers that could still beat it. 1e-5: log_softmax may round a
    # near-certain character's log-probability a hair above 0; the bound keeps that margin.
    best = {i: max(scores[i].values()) for i in lead}
    rest = [row for row in rows if row is not lead[row[1]] and row[3] >= best[row[1]] - 1e-5]
    _score_carriers(model, vocab, rest, first, cache, lens, cands.spans_of, scores, mask_id, dev)
    stats["rows"] += len(lead) + len(rest)
    stats["pruned"] += len(rows) - len(lead) - len(rest)


@torch.no_grad()
def recite_and_spans(model: GPT, vocab: Vocab, questions: list[str], max_chars: int, batch_size: int = 512,
                     answers: bool = True, prune: bool = True, stats: dict[str, int] | None = None,
                     drafter: Drafter | None = None, read: Callable[[Prediction], bool] | None = None,
                     floor: LineFloor | None = None) -> tuple[list[Recitation], list[tuple[str, float] | None]]:
    """recite() and best_spans() of its recitations, the same up to float rounding, without the
    prompt pass: the recitation's own key/value cache already holds `QUESTION RECITATION` (the
    recited characters were fed back one by one), so only the closing ⁇ is run, one step for the
    whole batch, before the carriers read it. drafter: a lone question's line is decoded
    speculatively (speculative.py), the same line in fewer passes. read: which recited lines to
    read a span off (None: every line); the others get no span and, with answers, no free answer.
    floor: a line stops where its line score can no longer reach the floor (LineFloor), a line
    the caller then refuses without reading it."""
    model.eval()
    dev = next(model.parameters()).device
    _count_into(stats)
    recs: list[Recitation] = []
    spans: list[tuple[str, float] | None] = []
    for s in range(0, len(questions), batch_size):
        qs = questions[s : s + batch_size]
        # as recite() decodes: the same lines (where no floor stops one)
        lines, decoded = _recite_batch(model, vocab, qs, max_chars, drafter, floor)
        texts = [ln.text for ln in lines]
        cands = _Candidates.of(model, vocab, qs, texts)
        # the others: no span fits, or the caller does not want this line read
        g = [i for i in range(len(qs)) if cands.carriers[i] and (read is None or read(lines[i]))]
        scores: list[dict[str, float]] = [{} for _ in qs]
        if g and decoded is not None:
            sub = _Candidates([cands.prompts[i] for i in g], [cands.spans_of[i] for i in g],
                              [cands.carriers[i] for i in g])
            lens = torch.tensor([len(p) for p in sub.prompts])
            # The kept rows' keys and values, with a slot for each prompt's ⁇ (the carriers read
            # copies, _score_carriers): the decoding's own cache where it keeps every row and has
            # that slot, else a copy of the kept rows, no larger than the prompts need.
            need, have = int(lens.max()), decoded.k.shape[3]
            if len(g) == len(qs) and have >= need:
                cache = decoded
            else:
                keep, n = torch.tensor(g).to(dev), min(have, need)
                cache = model.new_cache(len(g), need, dtype=decoded.k.dtype)
                cache.k[:, :, :, :n], cache.v[:, :, :, :n] = decoded.k[:, keep, :, :n], decoded.v[:, keep, :, :n]
                if cache.tokens is not None:
                    cache.tokens[:, :n] = decoded.tokens[keep, :n]
            # The ⁇ after each recitation, into its slot (a cut line's cache holds the next character there).
            close = torch.full((len(g), 1), vocab.stoi[MASK], dtype=torch.long, device=dev)
            logits, _ = model(close, layout=Layout(pos=(lens - 1)[:, None].to(dev)), cache=cache)
            first = torch.log_softmax(logits[:, 0].float(), dim=-1).cpu()
            sub_scores: list[dict[str, float]] = [{} for _ in g]
            _score_group(model, vocab, list(range(len(g))), cache, lens, first, sub, sub_scores, prune, stats)
            for r, i in enumerate(g):
                scores[i] = sub_scores[r]
        del decoded
        got: list[Prediction | None] = [None] * len(qs)
        wanted = [i for i in range(len(qs)) if read is None or read(lines[i])] if answers else []
        for i, a in zip(wanted, answers_after(model, vocab, [qs[i] for i in wanted], [texts[i] for i in wanted])
                        if wanted else []):
            got[i] = a
        recs += [Recitation(ln, a) for ln, a in zip(lines, got)]
        spans += cands.best(scores)
    return recs, spans


def _score_carriers(model: GPT, vocab: Vocab, rows: list[tuple[int, int, str, float]], first: torch.Tensor,
                    cache, lens: torch.Tensor, spans_of: list[list[str]], scores: list[dict[str, float]],
                    mask_id: int, dev: torch.device) -> None:
    """Run carrier rows (group row, question, carrier, first character's log-probability) after
    their question's cached prompt; every span of the question that a carrier begins with is
    scored into scores[question]."""
    rows = sorted(rows, key=lambda t: len(t[2]))  # similar lengths together: little padding in each chunk
    for k in range(0, len(rows), 64):
        chunk = rows[k : k + 64]
        S = max(len(c) for _, _, c, _ in chunk)
        owner = torch.tensor([r for r, _, _, _ in chunk])
        # each row's question's keys and values, in slots enough for its prompt and carrier only
        n = min(int((lens[owner] + S).max()), model.max_len)
        m, o = min(n, cache.k.shape[3]), owner.to(dev)
        reads = model.new_cache(len(chunk), n, dtype=cache.k.dtype)
        reads.k[:, :, :, :m], reads.v[:, :, :, :m] = cache.k[:, o, :, :m], cache.v[:, o, :, :m]
        if cache.tokens is not None:
            reads.tokens[:, :m] = cache.tokens[o, :m]
        y = torch.zeros(len(chunk), S, dtype=torch.long)
        for j, (_, _, c, _) in enumerate(chunk):
            y[j, : len(c)] = torch.tensor(vocab.encode(c))
        # Right-padded: pads sit past every real query. A carrier fits after its prompt (its ⁇ too,
        # _Candidates), so its own positions are at most max_len - 2; a row's pads, as long as the
        # chunk's longest carrier, are held at the model's last position, which no real query sees.
        pos = (lens[owner][:, None] + torch.arange(S)[None, :]).clamp(max=model.max_len - 1)
        out, _ = model(y.to(dev), layout=Layout(pos=pos.to(dev)), cache=reads)
        logp = torch.log_softmax(out.float(), dim=-1).cpu()
        # running[j, n-1]: log P of the carrier's first n characters (the first one is predicted at the
        # prompt's last position, the others at the carrier's own); close[j, n-1]: of ⁇ after them
        chars = torch.cat([first[owner, y[:, 0]][:, None], logp[:, :-1].gather(-1, y[:, 1:, None])[..., 0]], 1)
        running, close = chars.cumsum(1).tolist(), logp[:, :, mask_id].tolist()
        for j, (_, i, c, _) in enumerate(chunk):
            for sp in spans_of[i]:
                if sp not in scores[i] and c.startswith(sp):
                    scores[i][sp] = running[j][len(sp) - 1] + close[j][len(sp) - 1]


@torch.no_grad()
def best_spans_reference(model: GPT, vocab: Vocab, questions: list[str], recitations: list[str],
                         batch_size: int = 256) -> list[tuple[str, float] | None]:
    """For each question the span of its recitation with the highest log-probability,
    log P(span ⁇ | QUESTION RECITATION⁇) summed over the span's characters and the
    closing ⁇, with that log-probability; None where no span exists or fits the model.
    The plain way: every candidate is a whole sequence through the model."""
    out: list[tuple[str, float] | None] = []
    for scores in span_scores(model, vocab, questions, recitations, batch_size):
        best = None
        for span, score in scores.items():  # the recitation's order: the first of equal scores wins
            if best is None or score > best[1]:
                best = (span, score)
        out.append(best)
    return out


@torch.no_grad()
def span_scores(model: GPT, vocab: Vocab, questions: list[str], recitations: list[str],
                batch_size: int = 256) -> list[dict[str, float]]:
    """Every span of each recitation that fits the model after it, with its log-probability
    log P(span ⁇ | QUESTION RECITATION⁇), in the recitation's order (recitation_spans). For
    measuring other choices among a line's pieces (bench/piece_choice.py); answering uses best_spans."""
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
    out: list[dict[str, float]] = [{} for _ in questions]
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
            i, span = owner[s + j]
            out[i][span] = float(logp[j, torch.arange(st - 1, len(ids) - 1), torch.tensor(ids[st:])].sum())
    return out
