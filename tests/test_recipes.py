"""Recipes beyond the course: configs load, augmentations keep the facts, mixing is what it says, tiny runs work."""

from __future__ import annotations

import json
from pathlib import Path
from collections import Counter

import pytest
import torch

from hypothesis import given, settings
from hypothesis import strategies as st

import factgpt
from factgpt.batches import BatchedCorruption, TensorExamples
from factgpt.checkpoint import load_tensors
from factgpt.cli import main
from factgpt.datasets import NameDataset, documents
from factgpt.errors import InputError
from factgpt.heldout import to_tsv
from factgpt.tables import best_recipes_table, recipe_machines, write_recipe_table
from factgpt.config import DataSettings
from factgpt.lines import birth_front, change_lines, name_key, question_key, split_line
from factgpt.recipes import (recipe_source, LineLM, MixedSource, MultiSpanCorruption, RecipeSpec, load_recipe,
                             recipe_names, recite_errors, run_once, shrink)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_loads_and_says_what_it_changes(name):
    r = load_recipe(name)
    assert r.description.strip()
    if r.spec.track == "A":
        m = r.profile.model
        assert (m.n_layer, m.n_head, m.n_embd, m.block_size) == (4, 8, 256, 128)
    # a shipped recipe names its base and lists only what it changes
    raw = json.loads((Path(factgpt.__file__).parent / "configs" / "recipes" / f"{name}.json").read_text())
    assert raw.get("base") and set(raw) <= {"base", "description", "model", "data", "common", "pretrain",
                                           "finetune_pretrained", "finetune_scratch", "recipe"}


def test_bad_recipes_are_refused(tmp_path):
    base = {"base": "course", "description": "x", "model": {"n_layer": 2, "n_head": 2, "n_embd": 32}}
    for bad, msg in (({"track": "A"}, "track A is the course model"), ({"mix_qa": 1.0}, "mix_qa"),
                     ({"track": "B", "colour": 1}, "r.json: recipe.colour: unknown setting"),
                     ({"track": "B", "mix_qa": "half"}, "r.json: recipe.mix_qa: expected a number"),
                     ({"track": "B", "objective": "mlm"}, "objective"),
                     ({"track": "B", "objective": "multispan", "noise_density": 0.6}, "noise_density"),
                     ({"track": "B", "objective": "multispan", "mean_span": 0.5}, "mean_span"),
                     ({"track": "B", "qa_reads_only": True}, "needs a model with word_keys")):
        p = tmp_path / "r.json"
        p.write_text(json.dumps({**base, "recipe": bad}))
        with pytest.raises(InputError, match=msg):
            load_recipe(str(p))
    with pytest.raises(InputError, match="unknown recipe"):
        load_recipe("no-such-recipe")


def test_birth_front_and_name_key_on_a_line():
    line = "Ann Lee. Ann Lee is a painter . Lee was born in Oslo . She lives in Rome ."
    assert birth_front(line) == "Ann Lee. born in Oslo . She lives in Rome . Ann Lee is a painter . Lee was"
    assert name_key(line) == "Ann Lee. Ann Lee is a painter . Ann Lee. Lee was born in Oslo . Ann Lee. She lives in Rome ."
    assert question_key(birth_front(line)) == ("Where was Ann Lee born? born in Oslo . She lives in Rome . "
                                               "Ann Lee is a painter . Lee was")
    assert birth_front("Bo. Bo is tall .") == "Bo. Bo is tall ."  # nothing about a birth: unchanged
    assert birth_front("Bo. Born in Oslo, Bo is tall .") == "Bo. Born in Oslo, Bo is tall ."  # already in front


def test_augmentations_keep_every_sentence_of_every_line(wiki_text):
    docs = documents(wiki_text)
    fronted = documents(change_lines(wiki_text, DataSettings(birth_front=True)))
    keyed = documents(change_lines(wiki_text, DataSettings(name_key=True)))
    assert len(fronted) == len(keyed) == len(docs)
    for before, front, key in zip(docs, fronted, keyed):
        name, sents = split_line(before)
        assert front.startswith(f"{name}. ")
        assert Counter(front.replace(" ", "")) == Counter(before.replace(" ", ""))  # moved, nothing lost
        if sents:
            body = split_line(key)[1]  # the first key is taken as the line's own name
            assert [body[0]] + [s.removeprefix(f"{name}. ") for s in body[1:]] == sents


@given(mix=st.sampled_from([0.0, 0.25, 0.5]), views=st.integers(1, 3), bs=st.integers(5, 40))
@settings(max_examples=15, deadline=None)
def test_mixed_source_epoch_holds_every_line_views_times_and_the_share_of_questions(vocab, wiki_text,
                                                                                     train_tsv_text, mix, views, bs):
    text = "\n".join(documents(wiki_text)[:60]) + "\n"
    corruption = BatchedCorruption(text, vocab, 128)
    qa = TensorExamples(NameDataset(vocab, "\n".join(train_tsv_text.splitlines()[:20]) + "\n"))
    src = MixedSource(corruption, qa, mix, views)
    gen = torch.Generator().manual_seed(0)
    batches = list(src.epoch(bs, gen, shuffle=True))
    assert sum(b.n_examples for b in batches) == len(src) == 60 * views + src.n_qa
    qa_rows = {tuple(r.tolist()) for r in qa.x}
    n_qa = sum(tuple(r.tolist()) in qa_rows for b in batches for r in b.x)
    assert n_qa == src.n_qa
    if mix:
        assert abs(n_qa / len(src) - mix) < 0.02
    for b in batches:
        assert b.x.shape[1] == b.y.shape[1] == 127
        assert len(b.x) <= bs


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 112), density=st.floats(0.01, 0.49), mean_span=st.floats(1, 12), seed=st.integers(0, 999))
def test_multispan_spans_are_in_order_apart_inside_the_text_and_hold_the_noise(vocab, n, density, mean_span, seed):
    ms = MultiSpanCorruption("A. b\n", vocab, 128, noise_density=density, mean_span=mean_span)
    spans = ms.spans(n, torch.Generator().manual_seed(seed))
    noise = min(max(1, round(n * density)), n - 1) if n > 1 else 1
    assert len(spans) >= 1 and sum(ln for _, ln in spans) == noise
    assert all(ln >= 1 for _, ln in spans) and spans[0][0] >= 0 and sum(spans[-1]) <= n
    assert all(a + la < b for (a, la), (b, _) in zip(spans, spans[1:]))  # a kept character between spans
    assert n + 2 * len(spans) + 1 <= 128  # the example fits the block


def _parse_multispan(ids: list[int], mask: int) -> tuple[list[int], list[list[int]]]:
    """(corrupted text, spans) of one example: k masks, ⁇, then k spans each closed by ⁇."""
    k = (ids.count(mask) - 1) // 2
    at = [i for i, t in enumerate(ids) if t == mask]
    corrupted = ids[: at[k]]
    spans, prev = [], at[k]
    for j in at[k + 1 :]:
        spans.append(ids[prev + 1 : j])
        prev = j
    return corrupted, spans


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_multispan_examples_restore_the_truncated_line(vocab, wiki_text, seed):
    docs = documents(wiki_text)[:64]
    ms = MultiSpanCorruption("\n".join(docs) + "\n", vocab, 128, max_chars=100)
    b = ms.batch(torch.arange(64), torch.Generator().manual_seed(seed))
    assert torch.equal(b.x[:, 1:], b.y[:, :-1])
    full = torch.cat([b.x, b.y[:, -1:]], dim=1)
    for d, row in zip(docs, full.tolist()):
        ids = row[: next((i for i, t in enumerate(row) if t == vocab.pad_id), len(row))]
        assert set(row[len(ids):]) <= {vocab.pad_id}  # padding only after the example
        assert ids.count(vocab.mask_id) % 2 == 1 and ids[-1] == vocab.mask_id
        corrupted, spans = _parse_multispan(ids, vocab.mask_id)
        assert len(spans) == corrupted.count(vocab.mask_id) >= 1 and all(spans)
        restored = []
        for t in corrupted:
            restored += spans.pop(0) if t == vocab.mask_id else [t]
        text = vocab.decode(restored)
        assert d[:100].startswith(text) and (4 <= len(text) <= 112 or text == d[:100])
        assert len(ids) - len(text) == ids.count(vocab.mask_id)  # 2k + 1: k holes, ⁇, k closing ⁇


def test_multispan_masks_the_share_asked_for_in_spans_of_about_the_mean_length(vocab, wiki_text):
    docs = [d for d in documents(wiki_text) if len(d) >= 112][:200]
    ms = MultiSpanCorruption("\n".join(docs) + "\n", vocab, 128, noise_density=0.15, mean_span=3)
    gen = torch.Generator().manual_seed(0)
    noise = kept = 0
    lengths: list[int] = []
    firsts = Counter()
    for _ in range(20):
        b = ms.batch(torch.arange(len(docs)), gen)
        for row in torch.cat([b.x, b.y[:, -1:]], dim=1).tolist():
            ids = [t for t in row if t != vocab.pad_id]
            corrupted, spans = _parse_multispan(ids, vocab.mask_id)
            lengths += map(len, spans)
            noise += sum(map(len, spans))
            kept += len(corrupted) - len(spans)
            firsts[corrupted.index(vocab.mask_id) == 0] += 1
    assert noise / (noise + kept) == pytest.approx(0.15, abs=0.01)
    assert sum(lengths) / len(lengths) == pytest.approx(3, abs=0.3)
    assert firsts[True] > 0  # a span can start the line


def test_line_lm_predicts_every_next_character_of_the_cut_line(vocab, wiki_text):
    docs = documents(wiki_text)[:40]
    lm = LineLM("\n".join(docs) + "\n", vocab, 128, max_chars=48)
    assert len(lm) == 40
    for i, d in enumerate(docs):
        line = d[:48]
        n = len(line) - 1
        assert vocab.decode(lm.x[i, :n].tolist()) == line[:-1]
        assert vocab.decode(lm.y[i, :n].tolist()) == line[1:]
        assert not lm.y[i, n:].any()  # padding carries no loss


def test_questions_are_marked_read_only_and_lines_are_not(vocab, wiki_text, train_tsv_text):
    text = "\n".join(documents(wiki_text)[:30]) + "\n"
    qa = TensorExamples(NameDataset(vocab, "\n".join(train_tsv_text.splitlines()[:20]) + "\n"))
    src = MixedSource(LineLM(text, vocab, 128), qa, 0.5, qa_reads_only=True)
    qa_rows = {tuple(r.tolist()) for r in qa.x}
    n = 0
    for b in src.epoch(16, torch.Generator().manual_seed(0), shuffle=True):
        for x, ro in zip(b.x, b.read_only):
            is_qa = tuple(x.tolist()) in qa_rows
            assert bool(ro.all()) == is_qa and bool(ro.any()) == is_qa
            n += is_qa
    assert n == src.n_qa == 30


def test_views_of_a_line_share_a_step(vocab, wiki_text):
    text = "\n".join(documents(wiki_text)[:30]) + "\n"
    src = MixedSource(BatchedCorruption(text, vocab, 128), None, 0.0, views=3)
    seen, real = [], src.corruption.batch
    src.corruption.batch = lambda idx, gen: seen.append(idx.tolist()) or real(idx, gen)
    batches = list(src.epoch(6, torch.Generator().manual_seed(1), shuffle=True))
    assert len(batches) == 15
    for idx in seen:  # two lines a step, each corrupted three times
        assert sorted(Counter(idx).values()) == [3, 3]
    assert Counter(i for idx in seen for i in idx) == Counter({i: 3 for i in range(30)})


def test_pretraining_mixes_only_the_questions_it_is_given(vocab, wiki_text, train_tsv_text):
    from factgpt.datasets import parse_tsv
    rows = parse_tsv(train_tsv_text, "train", True)[:50]
    rec = shrink(load_recipe("mix50"))
    src = recipe_source(rec, wiki_text, vocab, rows, 128)
    allowed = {tuple(r.tolist()) for r in TensorExamples(NameDataset(vocab, to_tsv(rows))).x}
    seen = 0
    for b in src.epoch(64, torch.Generator().manual_seed(0), shuffle=True):
        for r in b.x:
            if int(r[0]) != vocab.mask_id and tuple(r.tolist()) in allowed:
                seen += 1
    assert seen == src.n_qa > 0


# One recipe per code path of the runner: span corruption mixed with questions, multi-span
# corruption, views, name keys, word keys that questions only read, and recitation with drills
# and span answers (on the course model, and on word keys with rotary positions).
CODE_PATHS = ["mix50", "multispan_front56", "views4", "namekey", "keys_lm_mix50", "course_lm_recite_cf33_span",
              "keys_lm_recite_cf60_rope_span"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CODE_PATHS)
def test_a_tiny_version_of_a_recipe_of_each_code_path_runs(name):
    r = run_once(shrink(load_recipe(name)), seed=0, device=torch.device("cpu"), heldout_n=300)
    assert r["heldout"]["total"] == 300 and r["dev"]["total"] == 500
    assert 0 <= r["heldout"]["accuracy"] <= 100 and r["parameters"] > 0
    assert r["seconds"]["total"] >= r["seconds"]["pretrain"] > 0


def test_reproduce_recipe_writes_results_table_and_plot(tmp_path):
    rec = shrink(load_recipe("mix25")).to_dict(name=False)
    rec["recipe"] = {"track": "B", "mix_qa": 0.25}
    path = tmp_path / "tiny_mix.json"
    path.write_text(json.dumps(rec))
    run = tmp_path / "tiny_mix"
    assert main(["reproduce", "--recipe", str(path), "--seeds", "0", "1", "--out", str(run), "--quiet"]) == 0
    res = json.loads((run / "results.json").read_text())
    assert res["seeds"] == [0, 1] and len(res["runs"]) == 2 and res["track"] == "B"
    assert set(res["dev"]) == {"mean", "std"} and res["commit"]
    for seed in (0, 1):  # every answer is kept, held-out and dev, and the model with what it was trained without
        lines = (run / f"seed{seed}" / "heldout.predictions.tsv").read_text().splitlines()
        assert lines[0] == "question\tanswer\tprediction\trecitation" and len(lines) == 301
        assert all(len(x.split("\t")) == 4 for x in lines)
        _, meta = load_tensors(run / f"seed{seed}" / "model.safetensors")
        assert meta["seed"] == seed and len(meta["heldout_questions"]) == 300
        assert meta["heldout_questions"] == [x.split("\t")[0] for x in lines[1:]]
    assert "partial" not in res
    table = write_recipe_table(tmp_path)
    assert "`tiny_mix`" in table and f"{res['device'].replace(' CPU, ', ', ')}, fp32" in table  # where it ran
    assert (tmp_path / "accuracy_vs_time.png").read_bytes()[:4] == b"\x89PNG"


def test_the_recipe_tables_name_each_runs_cpu_and_precision():
    """Seeds that ran on different CPUs are each named; runs that did not record the precision trained in fp32."""
    both = {"device": "AMD EPYC (family 25 model 1) CPU, 2 threads", "precision": "fp32",
            "runs": [{"device": "AMD EPYC (family 25 model 1) CPU, 2 threads", "precision": "fp32"},
                     {"device": "AMD EPYC (family 25 model 17, avx512_bf16) CPU, 2 threads", "precision": "fp32"},
                     {"device": "AMD EPYC (family 25 model 1) CPU, 2 threads", "precision": "fp32"}]}
    assert recipe_machines(both) == ("AMD EPYC (family 25 model 1), 2 threads, fp32; "
                                     "AMD EPYC (family 25 model 17, avx512_bf16), 2 threads, fp32")
    old = {"device": "AMD EPYC CPU, 2 threads", "runs": [{"seed": 0}]}
    assert recipe_machines(old) == "AMD EPYC (model not recorded), 2 threads, fp32"


@pytest.mark.parametrize("flags", [["--profile", "smoke"], ["--time_limit", "5"], ["--variants", "synthesizer"],
                                   ["--precision", "bf16"], ["--yes"]])
def test_the_study_flags_a_recipe_does_not_take_are_refused_not_ignored(flags, capsys, tmp_path):
    assert main(["reproduce", "--recipe", "mix25", *flags, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(flags[0] + ":") and len(err.splitlines()) == 1 and "is for the study" in err
    assert not (tmp_path / "run").exists()


def test_a_recipe_run_resumes_with_the_seeds_it_has_not_finished(tmp_path):
    path = tmp_path / "tiny_mix.json"
    path.write_text(json.dumps(shrink(load_recipe("mix25")).to_dict(name=False)))
    run = tmp_path / "run"
    args = ["reproduce", "--recipe", str(path), "--out", str(run), "--quiet", "--device", "cpu"]
    assert main([*args, "--seeds", "0", "1"]) == 0
    whole = json.loads((run / "results.json").read_text())
    # as if the run had stopped after seed 0
    cut = {**whole, "seeds": [0], "runs": whole["runs"][:1], "partial": True}
    (run / "results.json").write_text(json.dumps(cut))
    assert main([*args, "--resume", "--seeds", "1"]) == 2  # the run's plan is seeds 0 and 1
    assert main([*args, "--resume"]) == 0
    again = json.loads((run / "results.json").read_text())
    assert again["seeds"] == [0, 1] and "partial" not in again and len(again["command"]) == 2
    assert again["runs"][0] == whole["runs"][0]
    strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
    assert strip(again["runs"][1]) == strip(whole["runs"][1])  # the same training, bit for bit
    assert main([*args, "--resume"]) == 2  # complete: nothing to resume


def test_line_recall_checks_the_continuation_of_each_line(vocab, wiki_text, train_tsv_text):
    """A model that knows nothing recalls nothing; the lines it is given are the recipe's own."""
    from factgpt.datasets import parse_tsv
    from factgpt.model import GPT, GPTConfig
    from factgpt.recipes import line_recall, training_lines

    rec = shrink(load_recipe("keys_lm_mix50"))
    lines = training_lines(rec, wiki_text)
    assert len(lines) > 2800
    rows = parse_tsv(train_tsv_text, "train", True)[:40]
    for name, line in list(lines.items())[:50]:
        assert line.startswith(name) and len(line) <= 64
    torch.manual_seed(0)
    model = GPT(GPTConfig(len(vocab), n_layer=1, n_head=2, n_embd=32))
    r = line_recall(model, vocab, lines, rows)
    assert r["of_people"] == 40 and 20 <= r["total"] <= 40 and r["correct"] == 0


# ---- recite, then answer --------------------------------------------------------------------------------
def test_recite_needs_question_keyed_lm_lines_without_mixed_questions(tmp_path):
    RecipeSpec(track="B", objective="lm", recite=True)
    for bad in ({"objective": "span"}, {"objective": "lm", "mix_qa": 0.5}):
        with pytest.raises(InputError, match="recipe.recite"):
            RecipeSpec(track="B", recite=True, **bad)
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"base": "course", "recipe": {"objective": "lm", "recite": True}}))
    with pytest.raises(InputError, match="needs data.question_key") as e:
        load_recipe(str(f))
    assert e.value.where == str(f)
    # the line changes moved from the recipe section to data: an old file says where they went
    f.write_text(json.dumps({"base": "course", "recipe": {"birth_front": True}}))
    with pytest.raises(InputError, match=r"recipe.birth_front: .*data.birth_front"):
        load_recipe(str(f))


def test_recite_lines_end_with_the_answer_of_training_people_only(vocab, wiki_text, train_tsv_text):
    from factgpt.datasets import parse_tsv
    from factgpt.heldout import name_of
    rows = parse_tsv(train_tsv_text, "train", True)
    taught, held = rows[:100], rows[100:200]
    rec = shrink(load_recipe("keys_lm_recite"))
    max_chars = rec.profile.data.max_chars
    src = recipe_source(rec, wiki_text, vocab, taught, 128)
    assert src.n_qa == 0
    texts = {}
    for x, y in zip(src.corruption.x, src.corruption.y):
        ids = [int(x[0])] + [int(t) for t in y if int(t) != 0]
        text = vocab.decode(ids)
        texts[text.partition(" born? ")[0].removeprefix("Where was ")] = text
    for r in taught:
        t = texts.get(name_of(r.question))
        if t is not None:
            line, _, tail = t.partition("⁇")
            assert len(line) <= max_chars and line.startswith(r.question + " ") and tail == r.answer + "⁇"
    for r in held:
        t = texts.get(name_of(r.question))
        if t is not None and name_of(r.question) not in {name_of(q.question) for q in taught}:
            assert t.endswith("⁇") and t.count("⁇") == 1


def test_counterfactual_drills_swap_the_place_and_teach_only_the_copied_answer(vocab, wiki_text, train_tsv_text):
    from factgpt.datasets import parse_tsv
    from factgpt.heldout import name_of
    rows = parse_tsv(train_tsv_text, "train", True)[:200]
    truth = {name_of(r.question): r.answer for r in rows}
    rec = shrink(load_recipe("keys_lm_recite_cf"))
    src = recipe_source(rec, wiki_text, vocab, rows, 128)
    cf = src.qa
    assert 0 < len(cf) <= len(rows) and src.n_qa > 0
    b = cf.batch(torch.arange(len(cf)), torch.Generator().manual_seed(1))
    for (head, ans, tail), x, y in zip(cf.items, b.x, b.y):
        text = vocab.decode([int(t) for t in x if int(t)])
        line, _, answer = text.partition("⁇")
        name = line.partition(" born? ")[0].removeprefix("Where was ")
        assert truth[name] == ans and line.startswith(head) and line.endswith(tail)
        new = line[len(head): len(line) - len(tail)]
        assert new != ans and new in cf.pool and answer == new
        assert vocab.decode([int(t) for t in y if int(t)]) == new + "⁇"  # the line itself is no target
    seen_cf = 0
    for bb in src.epoch(64, torch.Generator().manual_seed(0), shuffle=True):
        for x, y, r in zip(bb.x, bb.y, bb.read_only):
            first_target = int((y != 0).nonzero()[0])
            if first_target > 0 and int(x[first_target]) == vocab.mask_id and r.all():
                seen_cf += 1  # a drill: targets start at its ⁇, and no position writes the key table
    assert seen_cf == src.n_qa


def test_counterfactual_needs_recite():
    with pytest.raises(InputError, match="recipe.counterfactual"):
        RecipeSpec(track="B", objective="lm", counterfactual=0.5)


def test_recite_errors_say_where_each_answer_went_wrong():
    from factgpt.datasets import QA

    rows = [QA(f"Where was {n} born?", a, i) for i, (n, a) in enumerate(
            [("Ann", "Paris"), ("Bob", "Rome"), ("Cy", "Oslo"), ("Di", "Lima"), ("Ed", "Kyiv")], 1)]
    lines = {"Ann": "Where was Ann born? born in Paris, a poet",
             "Bob": "Where was Bob born? a painter",
             "Cy": "Where was Cy born? born in Oslo, moved to Bergen",
             "Di": "Where was Di born? born in Lima",
             "Ed": "Where was Ed born? born in Kyiv"}
    recitations = ["born in Paris, a poet", "a painter", "born in Oslo, moved to Bergen", "born in Lyon", "born in Kyiv"]
    answers = ["Paris", "London", "Bergen", "Lyon", "Kyivyiv"]
    got = recite_errors(rows, lines, recitations, answers)
    assert got == {"correct": 1, "answer_not_in_line": 1, "copied_another_span": 1, "line_not_recited": 1,
                   "garbled_copy": 1}


def test_a_recipe_seed_keeps_its_model_when_its_evaluation_fails(tmp_path, monkeypatch):
    """The trained model is written before it is evaluated: a failure in evaluating (as a span-scoring
    bug once did, after an hour of training) leaves the model to evaluate again."""
    import factgpt.recipes.runner as runner
    from factgpt.checkpoint import load_tensors

    rec = shrink(load_recipe("mix25")).to_dict(name=False)
    rec["recipe"] = {"track": "B", "mix_qa": 0.25}
    path = tmp_path / "tiny_mix.json"
    path.write_text(json.dumps(rec))

    def fail(*a, **k):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(runner, "predict", fail)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        main(["reproduce", "--recipe", str(path), "--seeds", "0", "--out", str(tmp_path / "run"), "--quiet"])
    _, meta = load_tensors(tmp_path / "run" / "seed0" / "model.safetensors")
    assert meta["seed"] == 0 and len(meta["heldout_questions"]) == 300
    assert not (tmp_path / "run" / "results.json").exists()


def test_the_best_recipes_table_ranks_three_seed_recipes_before_a_single_seeds_lead():
    def rec(name: str, seeds: list[int], held: float) -> dict:
        return {"recipe": name, "track": "A", "seeds": seeds, "heldout": {"mean": held, "std": 0.5},
                "dev": {"mean": held, "std": 0.5}, "minutes": {"mean": 40.0}, "device": "AMD EPYC CPU, 2 threads",
                "runs": [{"seed": s} for s in seeds]}

    table = best_recipes_table([rec("lucky", [0], 90.0), rec("three", [0, 1, 2], 88.0), rec("also", [0, 1, 2], 87.0)])
    names = [line.split("`")[1] for line in table.splitlines()[2:]]
    assert names == ["three", "also"]
    assert [line.split("`")[1] for line in best_recipes_table([rec("lucky", [0], 90.0)]).splitlines()[2:]] == ["lucky"]
