"""`factgpt analyze`: calibration measures, unseen names, error splits, and the HTML report end to end."""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from factgpt.analysis import add_arguments, main as analyze_main, resolve_model_paths, run_analysis
from factgpt.analysis import confidence as C
from factgpt.analysis import breakdown as E
from factgpt.analysis import unseen as U
from factgpt.results import ROW_FILES
from factgpt.checkpoint import save_model
from factgpt.errors import InputError
from factgpt.fileio import bundled_path, read_text
from factgpt.heldout import corpus_names, name_of
from factgpt.model import GPT, GPTConfig
from factgpt.results import ROW_TITLES

pytestmark = pytest.mark.usefixtures("single_thread")

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TSV_NAMES = ("birth_places_train.tsv", "birth_dev.tsv", "birth_test_inputs.tsv")


@dataclass
class P:
    """A stand-in for evaluate.Prediction."""
    text: str
    prob: float = 0.5
    first_prob: float = 0.5


# ---- ECE, AUROC, reliability bins -------------------------------------------------------------
def brute_auroc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))


def test_auroc_hand_examples():
    assert C.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    # ties count half: positives {0.5, 0.9} against negatives {0.2, 0.5} -> (1 + 0.5 + 1 + 1) / 4
    assert C.auroc([0.2, 0.5, 0.5, 0.9], [0, 1, 0, 1]) == pytest.approx(0.875)
    assert C.auroc([0.5] * 4, [1, 0, 1, 0]) == pytest.approx(0.5)
    # perfect separation, either way round
    assert C.auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert C.auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    # undefined without right or without wrong answers
    assert C.auroc([0.3, 0.6], [0, 0]) is None
    assert C.auroc([0.3, 0.6], [1, 1]) is None
    assert C.auroc([], []) is None


def test_average_ranks_share_ties():
    assert C.average_ranks([0.3, 0.1, 0.3, 0.2]).tolist() == [3.5, 1.0, 3.5, 2.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), st.booleans()), max_size=30))
def test_auroc_matches_pairwise_count(pairs):
    scores, labels = [s for s, _ in pairs], [y for _, y in pairs]
    expected = brute_auroc(scores, labels)
    got = C.auroc(scores, labels)
    assert (got is None) == (expected is None)
    if expected is not None:
        assert got == pytest.approx(expected)


def test_ece_hand_examples():
    # bins: [0, .1) one wrong at .05 -> .05; [.1, .2) one wrong at .15 -> .15; [.9, 1] two at .95, one right -> .45
    assert C.ece([0.05, 0.15, 0.95, 0.95], [0, 0, 1, 0]) == pytest.approx((0.05 + 0.15 + 2 * 0.45) / 4)
    assert C.ece([0.55, 0.55, 0.55, 0.55], [1, 0, 1, 0]) == pytest.approx(0.05)
    assert C.ece([0.5, 0.5], [1, 0]) == pytest.approx(0.0)
    assert C.ece([1.0, 1.0, 0.0], [1, 1, 0]) == pytest.approx(0.0)
    assert C.ece([], []) is None


def test_reliability_bins():
    conf = [0.0, 0.1, 0.0999, 0.3, 0.95, 1.0, 1.0]
    ok = [0, 1, 0, 1, 1, 1, 0]
    bins = C.reliability_bins(conf, ok)
    assert len(bins) == 10 and [b["lo"] for b in bins] == pytest.approx([i / 10 for i in range(10)])
    assert sum(b["count"] for b in bins) == len(conf)
    assert [b["count"] for b in bins] == [2, 1, 0, 1, 0, 0, 0, 0, 0, 3]  # 0.1 opens bin 1; 1.0 closes bin 9
    assert bins[9]["correct"] == 2 and bins[9]["accuracy"] == pytest.approx(2 / 3)
    assert bins[2]["accuracy"] is None and bins[2]["mean_confidence"] is None
    rng = np.random.default_rng(0)
    c = rng.random(500)
    assert sum(b["count"] for b in C.reliability_bins(c, c > 0.5)) == 500
    s = C.summarize(c, rng.random(500) < c)
    assert sum(b["count"] for b in s["bins"]) == 500 and 0 <= s["ece"] <= 1
    with pytest.raises(ValueError):
        C.ece([1.5], [1])


# ---- unseen names -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def texts():
    return read_text(bundled_path("wiki.txt")), [read_text(bundled_path(n)) for n in TSV_NAMES]


def test_unseen_names(texts):
    wiki, tsvs = texts
    names = U.unseen_names(wiki, tsvs, 500, seed=0)
    assert len(names) == 500 and len(set(names)) == 500
    for n in names:
        assert re.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)+", n), n
        assert n not in wiki and all(n not in t for t in tsvs), n
    assert names == U.unseen_names(wiki, tsvs, 500, seed=0)
    assert names != U.unseen_names(wiki, tsvs, 500, seed=1)
    # the parts come from the data's people
    firsts = {name.split()[0] for name in U.pool_names(wiki, tsvs)}
    assert all(n.split()[0] in firsts for n in names)


def test_unseen_analysis_counts():
    names = ["A B", "C D", "E F", "G H"]
    uns = [P("London", 0.2), P("London", 0.4), P("Paris", 0.1), P("Xyz", 0.3)]
    dev = [P("Rome", 0.9), P("London", 0.8)]
    res = U.analyze(names, uns, dev, [True, False], ["London", "London", "Paris", "Rome"])
    assert res["top1_share"] == 0.5 and res["distinct_answers"] == 3
    assert res["share_training_answers"] == 0.75 and res["dev_share_training_answers"] == 1.0
    assert res["top_answers"][0] == {"answer": "London", "count": 2, "share": 0.5}
    assert res["top_training_places"][0] == {"place": "London", "count": 2, "share": 0.5}
    assert res["auroc_dev_vs_unseen"]["answer"] == 1.0  # every dev confidence is above every unseen one
    assert res["confidence"]["answer"]["unseen"]["mean"] == pytest.approx(0.25)
    # answers {London .5, Paris .25, Xyz .25} against places {London .5, Paris .25, Rome .25}
    assert res["total_variation_vs_training_places"] == pytest.approx(0.25)


# ---- error splits -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dev_and_train(dev_rows, train_tsv_text):
    from factgpt.datasets import parse_tsv

    return dev_rows, [r.answer for r in parse_tsv(train_tsv_text, "train", True)]


def test_error_splits_partition_dev(dev_and_train, wiki_text):
    rows, train = dev_and_train
    rng = random.Random(0)
    preds = [P(r.answer if rng.random() < 0.3 else "London", rng.random()) for r in rows]
    correct = [r.answer == p.text for r, p in zip(rows, preds)]
    feats = E.features(rows, wiki_text, train)
    sp = E.splits(feats, correct, [p.prob for p in preds])
    assert set(sp) == set(E.SPLITS)
    for key, s in sp.items():
        assert sum(b["n"] for b in s["buckets"]) == 500, key
        assert sum(b["correct"] for b in s["buckets"]) == sum(correct), key
        for b in s["buckets"]:
            assert b["accuracy"] == (pytest.approx(b["correct"] / b["n"]) if b["n"] else None)
    by = {k: {b["bucket"]: b for b in s["buckets"]} for k, s in sp.items()}
    # the facts measured on the data files (factgpt/data/README.md)
    assert by["wiki_line"]["has a line"]["n"] == 500  # initials kept in names (people.split_name)
    assert by["place_in_line"]["within the cut"]["n"] == 462  # the course's cut: 112 characters
    # accuracies against a direct count
    names = corpus_names(wiki_text)
    has = [name_of(r.question) in names for r in rows]
    assert by["wiki_line"]["has a line"]["correct"] == sum(c for c, h in zip(correct, has) if h)
    freq = Counter(train)
    often = [freq[r.answer] >= 10 for r in rows]
    assert by["place_train_frequency"]["≥10"]["n"] == sum(often)
    assert by["place_train_frequency"]["≥10"]["correct"] == sum(c for c, o in zip(correct, often) if o)
    three = [len(name_of(r.question).split()) == 3 for r in rows]
    assert by["name_words"]["3"]["correct"] == sum(c for c, t in zip(correct, three) if t)

    ex = E.examples(rows, preds, feats, seed=0)
    assert len(ex["correct"]) == 10 and len(ex["wrong"]) == 10 and len(ex["most_confident_wrong"]) == 10
    assert all(x["gold"] == x["prediction"] for x in ex["correct"])
    assert all(x["gold"] != x["prediction"] for x in ex["wrong"])
    assert ex == E.examples(rows, preds, feats, seed=0)


# ---- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tiny_study, tmp_path_factory, single_thread):
    """The shared tiny study run and its analysis: (results.json, analysis dict, out folder)."""
    assert tiny_study["rc"] == 0, tiny_study["err"]
    results_json = tiny_study["dir"] / "results.json"
    paths = resolve_model_paths(None, results_json)
    d = tmp_path_factory.mktemp("study")
    analysis = run_analysis(paths, d / "analysis", results_json, seed=0)
    return results_json, analysis, d / "analysis"


ROWS = ["tiny/vanilla_pretrain", "tiny/synthesizer_pretrain", "tiny/vanilla_nopretrain"]


def test_default_checkpoints_of_a_study(study):
    results_json, analysis, _ = study
    paths = resolve_model_paths(None, results_json)
    assert list(paths) == ROWS  # named PROFILE/ROW
    assert paths["tiny/vanilla_pretrain"] == results_json.parent / "seed0" / "vanilla.finetune.safetensors"
    assert all(p.name == ROW_FILES[row.split("/")[1]] for row, p in paths.items())
    with pytest.raises(InputError, match="no seed 3"):
        resolve_model_paths(None, results_json, study_seed=3)


def test_run_analysis_writes_everything(study):
    results_json, analysis, out = study
    on_disk = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(analysis))
    assert {"format", "main", "models", "confidence", "unseen", "errors", "hypothesis_c", "figures",
            "study"} <= on_disk.keys()
    assert on_disk["main"] == "tiny/vanilla_pretrain"
    assert list(on_disk["confidence"]) == ROWS
    results = json.loads(results_json.read_text())
    dev_gold = [line.split("\t")[1] for line in read_text(bundled_path("birth_dev.tsv")).splitlines()]
    for row, c in on_disk["confidence"].items():
        assert c["n"] == 500 and sum(b["count"] for b in c["answer"]["bins"]) == 500
        assert sum(b["count"] for b in c["first_char"]["bins"]) == 500
        # the same predictions as the study's (fp32 on the CPU both times)
        assert on_disk["models"][row]["study_predictions_agreement"] == 1.0
        study_row = row.split("/")[1]
        assert c["correct"] == results["rows"][study_row]["runs"][0]["correct"]
        study_preds = (results_json.parent / "seed0" / f"{study_row}.dev.predictions").read_text().splitlines()
        assert c["correct"] == sum(p == g for p, g in zip(study_preds, dev_gold))
        if c["correct"] in (0, 500):
            assert c["answer"]["auroc"] is None
    u = on_disk["unseen"]["main"]
    assert on_disk["unseen"]["n_names"] == 500 and u["n_names"] == 500
    assert len(u["top_answers"]) <= 15 and len(u["top_training_places"]) == 15
    assert u["top_training_places"][0]["place"] == "London"
    assert 0 <= u["share_training_answers"] <= 1
    for row in ROWS:
        assert on_disk["models"][row]["kind"] == "course" and on_disk["errors"]["rows"][row]["cut"] == 112  # the course cut (tiny has no max_chars)
        for s in on_disk["errors"]["rows"][row]["splits"].values():
            assert sum(b["n"] for b in s["buckets"]) == 500
        for kind in ("spelling", "model_state"):
            t = on_disk["hypothesis_c"]["rows"][row][kind]
            assert t["names"] == 500 and 0 <= t["observed"] <= 1 and 0 < t["p_value"] <= 1, t
    assert not on_disk["evidence"]  # no recite model here
    for name in on_disk["figures"].values():
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    assert (out / "report.html").is_file()
    tsv = (out / "dev_tiny_vanilla_pretrain.tsv").read_text(encoding="utf-8").splitlines()
    assert len(tsv) == 501


class PageParser(HTMLParser):
    """Collects images, table text and the open/close balance of a page."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.imgs, self.links, self.decl = [], [], [], [], []
        self.in_table, self.table_text = 0, []

    def handle_decl(self, decl):
        self.decl.append(decl)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        for k in ("src", "href"):
            if k in a:
                self.links.append(a[k])
        if tag == "table":
            self.in_table += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "table":
            self.in_table -= 1

    def handle_data(self, data):
        if self.in_table:
            self.table_text.append(data)


def test_report_is_self_contained_html5(study):
    results_json, analysis, out = study
    page = (out / "report.html").read_text(encoding="utf-8")
    p = PageParser()
    p.feed(page)
    p.close()
    assert page.startswith("<!DOCTYPE html>") and p.decl == ["DOCTYPE html"]
    assert not p.problems and not p.stack, (p.problems, p.stack)
    assert '<html lang="en">' in page and '<meta charset="utf-8">' in page and "<title>" in page
    assert p.links and all(u.startswith("data:image/png;base64,") for u in p.links)
    rest = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"https?:|url\(|@import|<link|<iframe|<object", rest)  # nothing loads from outside
    # the study's three figures; per model a reliability diagram, two made-up-name figures and the splits
    assert len(p.imgs) == 3 + 3 * 4
    for img in p.imgs:
        assert base64.b64decode(img["src"].split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
        assert img.get("alt")
    text = " ".join(p.table_text)
    for title in ROW_TITLES.values():
        assert title in text, title
    # numbers of the page come from analysis.json
    c = analysis["confidence"]["tiny/vanilla_pretrain"]
    assert f"{c['correct']}/{c['n']}" in text
    assert f"{100 * analysis['unseen']['main']['share_training_answers']:.1f}%" in page


def test_report_renders_in_chromium(study, tmp_path):
    if not CHROMIUM.exists():
        # CI installs it (.ci/run), so there the test must run; elsewhere a skip says why
        assert not os.environ.get("FACTGPT_CI"), "/usr/bin/chromium is missing on CI"
        pytest.skip("/usr/bin/chromium is not installed")
    _, _, out = study
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           (out / "report.html").resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    n_img = len(re.findall(r"<img\b", dom))
    assert n_img == 15
    assert attrs.get("images-total") == str(n_img) and attrs.get("images") == str(n_img), attrs
    assert attrs.get("errors") == "0", attrs
    tables = re.findall(r"<table>.*?</table>", dom, flags=re.S)
    assert any(all(t in tab for t in ROW_TITLES.values()) for tab in tables)
    for src in re.findall(r'<img[^>]*\bsrc="([^"]*)"', dom):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


# ---- the command --------------------------------------------------------------------------------
def parse(*argv) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    a = p.parse_args([str(x) for x in argv])
    a.argv = ["analyze", *map(str, argv)]
    return a


def test_command_on_a_checkpoint(tmp_path, vocab, capsys, monkeypatch, dev_rows):
    """The command on one checkpoint, with a stand-in decoder that gets every third dev question right."""
    gold = {r.question: r.answer for r in dev_rows}
    right = {r.question for r in dev_rows[::3]}

    def fake_predict(model, vocab, questions, batch_size=512):
        return [P(gold[q], 0.6 + 0.3 * (len(q) % 2), 0.9) if q in right else P("London", 0.1 + 0.5 * (len(q) % 2), 0.5)
                for q in questions]

    monkeypatch.setattr("factgpt.analysis.answers.predict", fake_predict)
    torch.manual_seed(0)
    ckpt = tmp_path / "untrained.safetensors"
    save_model(ckpt, GPT(GPTConfig(vocab_size=len(vocab), n_layer=1, n_head=2, n_embd=32)), vocab)
    rc = analyze_main(parse("--reading_params_path", f"mine={ckpt}", "--out", tmp_path / "a", "--quiet"))
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["main"] == "mine"
    a = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert list(a["models"]) == ["mine"] and a["results_json"] is None and "study" not in a
    c = a["confidence"]["mine"]
    n_right = len(right) + sum(r.answer == "London" for r in dev_rows if r.question not in right)
    assert c["correct"] == n_right and summary["models"]["mine"]["dev_accuracy"] == pytest.approx(n_right / 500)
    conf = [0.6 + 0.3 * (len(r.question) % 2) if r.question in right else 0.1 + 0.5 * (len(r.question) % 2)
            for r in dev_rows]
    ok = [r.question in right or r.answer == "London" for r in dev_rows]
    assert c["answer"]["auroc"] == pytest.approx(brute_auroc(conf, ok))
    assert c["answer"]["ece"] == pytest.approx(C.ece(conf, ok))
    assert a["unseen"]["main"]["top_answers"][0] == {"answer": "London", "count": 500, "share": 1.0}
    assert a["unseen"]["main"]["share_training_answers"] == 1.0
    assert len(a["errors"]["rows"]["mine"]["examples"]["correct"]) == 10
    # every made-up name answered London, so by chance and observed alike: the share of nearest people from London
    for kind in ("spelling", "model_state"):
        t = a["hypothesis_c"]["rows"]["mine"][kind]
        assert t["observed"] == pytest.approx(t["chance"]) and t["verdict"].startswith("not supported")
    assert a["command"].startswith("factgpt analyze --reading_params_path")
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "No results.json was given" in page
    # two checkpoints of the same name get distinct row names
    assert list(resolve_model_paths([str(ckpt), str(ckpt)], None)) == ["untrained", "untrained_2"]


def test_command_bad_paths(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="no such checkpoint file"):
        analyze_main(parse("--reading_params_path", tmp_path / "missing.safetensors", "--out", tmp_path / "o"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable safetensors checkpoint"):
        analyze_main(parse("--reading_params_path", junk, "--out", tmp_path / "o"))
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        analyze_main(parse("--reading_params_path", junk, "--out", tmp_path / "a_file"))
    with pytest.raises(InputError, match="no such file"):
        analyze_main(parse("--results", tmp_path / "nope.json", "--out", tmp_path / "o"))
    bad = tmp_path / "results.json"
    bad.write_text('{"rows": {}}')
    with pytest.raises(InputError, match="not a results.json"):
        analyze_main(parse("--results", bad, "--out", tmp_path / "o"))
    bad.write_text('{"profile": "x", "rows": {}, "seeds": [0]}')
    with pytest.raises(InputError, match="no finetuned checkpoint"):
        analyze_main(parse("--results", bad, "--out", tmp_path / "o"))
    monkeypatch.setattr("factgpt.analysis.command.shipped_model", lambda name="quick": None)
    with pytest.raises(InputError, match="--reading_params_path") as e:
        analyze_main(parse("--out", tmp_path / "o"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "o").exists()



def test_error_splits_follow_the_models_own_view(dev_and_train, wiki_text):
    """For a recite model's view (birth clause first, keyed by the question, cut at 80) the
    'within the cut' bucket holds exactly the people whose pretraining line shows the place."""
    from factgpt.config import DataSettings
    from factgpt.lines import pretraining_lines

    rows, train = dev_and_train
    data = DataSettings(birth_front=True, question_key=True, max_chars=80)
    feats = E.features(rows, wiki_text, train, data, 80)
    lines = pretraining_lines(wiki_text, data)
    within = sum(r.answer in lines[name_of(r.question)] for r in rows)
    assert sum(f["place_in_line"] == "within the cut" for f in feats) == within
    # moving the birth clause forward brings more places inside 80 characters than the plain cut at 80
    plain = E.features(rows, wiki_text, train, DataSettings(), 80)
    assert within > sum(f["place_in_line"] == "within the cut" for f in plain)


def test_a_recite_model_side_by_side(tmp_path, vocab, study):
    """A (tiny, untrained) recite checkpoint beside a course-objective one: answered its own way,
    with its abstention rule, evidence and hypothesis (c), and the report shows both."""
    results_json, _, _ = study
    torch.manual_seed(0)
    ckpt = tmp_path / "recite.safetensors"
    meta = {"spec": {"recite": True, "birth_front": True, "question_key": True}, "max_chars": 60,
            "abstention": {"thresholds": {"line_mean": 0.5, "line_mean_x_span": 0.1}}}
    save_model(ckpt, GPT(GPTConfig(vocab_size=len(vocab), n_layer=1, n_head=2, n_embd=32)), vocab, meta)
    course = resolve_model_paths(None, results_json)["tiny/vanilla_pretrain"]
    a = run_analysis({"recite": ckpt, "tiny/vanilla_pretrain": course}, tmp_path / "a", None, seed=0, n_unseen=40,
                     missing=[{"row": "course/x", "title": "course profile: x", "why": "no checkpoint"}])
    assert a["main"] == "recite" and a["models"]["recite"]["kind"] == "recite"
    assert a["models"]["recite"]["confidences"]["answer"].startswith("shown confidence")
    ab = a["confidence"]["recite"]["abstention"]
    assert 0 <= ab["dev_answered"] <= 1 and ab["dev_correct_answered"] + ab["dev_wrong_answered"] == pytest.approx(ab["dev_answered"])
    assert a["errors"]["rows"]["recite"]["cut"] == 60 and a["errors"]["rows"]["tiny/vanilla_pretrain"]["cut"] == 112
    ev = a["evidence"]["recite"]
    assert sum(ev["errors"].values()) == 500 and ev["made_up_total"] == 40
    assert "tiny/vanilla_pretrain" not in a["evidence"]
    assert set(a["hypothesis_c"]["rows"]) == {"recite", "tiny/vanilla_pretrain"}
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "The recite model's evidence" in page and "Hypothesis (c)" in page and "course profile: x" in page
    p = PageParser()
    p.feed(page)
    assert not p.problems and not p.stack
