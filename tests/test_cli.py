"""The `factgpt` command: the London baseline, bad inputs, an end-to-end run, and `reproduce`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY_PROFILE
from factgpt.checkpoint import save_model
from factgpt.cli import main
from factgpt.fileio import bundled_path

pytestmark = pytest.mark.usefixtures("single_thread")

# One line on stderr: `path:line: problem` or `path: problem`.
ONE_LINE_ERROR = re.compile(r"^[^\n:]+(:\d+)?: \S[^\n]*$")
TINY = ["--n_layer", "1", "--n_head", "2", "--n_embd", "32"]
CORRECT = re.compile(r"^Correct: (\d+) out of 500: (\d+(\.\d+)?)%$", re.M)


def cli(*args) -> tuple[int, str, str]:
    """Run `factgpt ARGS` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, out: str, err: str, *must_contain: str) -> None:
    assert rc == 2, (rc, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert ONE_LINE_ERROR.match(lines[0]), lines[0]
    assert "Traceback" not in err and "Traceback" not in out
    for s in must_contain:
        assert s in lines[0], (s, lines[0])


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---- the baseline ------------------------------------------------------------------------------
def test_baseline_london(tmp_path):
    rc, out, _ = cli("baseline", "london")
    assert rc == 0
    assert out.strip() == "Correct: 25 out of 500: 5.0%"
    rc, out, _ = cli("baseline", "london", "--outputs_path", tmp_path / "london.txt")
    assert rc == 0 and "Correct: 25 out of 500: 5.0%" in out
    assert (tmp_path / "london.txt").read_text() == "London\n" * 500
    rc, out, _ = cli("baseline", "london", "--eval_corpus_path", bundled_path("birth_test_inputs.tsv"))
    assert rc == 0 and "No gold answers" in out and "437" in out


# ---- bad inputs -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory, vocab):
    d = tmp_path_factory.mktemp("ckpts")
    from factgpt.model import GPT, GPTConfig

    paths = {}
    for variant in ("vanilla", "synthesizer"):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=len(vocab), n_layer=1, n_head=2, n_embd=32, variant=variant))
        paths[variant] = d / f"{variant}.safetensors"
        save_model(paths[variant], model, vocab)
    return paths


BAD_FILES = {
    "missing": None,
    "empty": b"",
    "blank": b"\n  \n\n",
    "latin1": "Where was Jos\u00e9 born?\tParis\n".encode("latin-1"),
    "binary": b"Where was A born?\tParis\n\x00\x01\x02\x03",
    "notab": b"Where was A born?\tParis\nWhere was B born?\tRome\nWhere was C born? Oslo\n",
    "unknown_char": "Where was A born?\tParis\nWhere was \u2603 born?\tRome\n".encode(),
}
EXPECT = {
    "missing": ("no such file",),
    "empty": ("empty",),
    "blank": ("empty",),
    "latin1": (":1: ", "not UTF-8"),
    "binary": (":2: ", "binary"),
    "notab": (":3: ", "no tab"),
    "unknown_char": (":2: ", "\u2603", "vocabulary"),
}


def _write_bad(tmp_path: Path, kind: str, suffix: str) -> Path:
    p = tmp_path / f"{kind}{suffix}"
    if BAD_FILES[kind] is not None:
        p.write_bytes(BAD_FILES[kind])
    return p


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_finetune_file(tmp_path, kind):
    bad = _write_bad(tmp_path, kind, ".tsv")
    before = files_in(tmp_path)
    out_path = tmp_path / "model.safetensors"
    res = cli("finetune", "vanilla", "--finetune_corpus_path", bad, "--writing_params_path", out_path,
              *TINY, "--max_epochs", "1", "--quiet")
    assert_one_line_error(*res, str(bad), *EXPECT[kind])
    assert files_in(tmp_path) == before


@pytest.mark.parametrize("kind", ["missing", "empty", "latin1", "binary"])
def test_bad_pretraining_corpus(tmp_path, kind):
    bad = _write_bad(tmp_path, kind, ".txt")
    before = files_in(tmp_path)
    res = cli("pretrain", "vanilla", bad, "--writing_params_path", tmp_path / "p.safetensors", *TINY,
              "--max_epochs", "1", "--quiet")
    assert_one_line_error(*res, str(bad), *EXPECT[kind])
    assert files_in(tmp_path) == before


@pytest.mark.parametrize("kind", ["missing", "empty", "latin1", "binary", "unknown_char"])
def test_bad_eval_file(tmp_path, kind, tiny_checkpoints):
    bad = _write_bad(tmp_path, kind, ".tsv")
    before = files_in(tmp_path)
    res = cli("evaluate", "vanilla", "--reading_params_path", tiny_checkpoints["vanilla"],
              "--eval_corpus_path", bad, "--outputs_path", tmp_path / "preds.txt")
    assert_one_line_error(*res, str(bad), *EXPECT[kind])
    assert files_in(tmp_path) == before


def test_corpus_with_reserved_character(tmp_path):
    bad = tmp_path / "corpus.txt"
    bad.write_text("a line\nanother \u2047 line\n", encoding="utf-8")
    res = cli("pretrain", "vanilla", bad, "--writing_params_path", tmp_path / "p.safetensors", *TINY, "--quiet")
    assert_one_line_error(*res, f"{bad}:2: ", "reserved")
    assert files_in(tmp_path) == {"corpus.txt"}


@pytest.mark.parametrize("command", ["baseline", "evaluate", "pretrain", "finetune"])
def test_output_in_missing_folder(tmp_path, command, tiny_checkpoints):
    target = tmp_path / "no_such_folder" / "out"
    args = {
        "baseline": ["baseline", "london", "--outputs_path", target],
        "evaluate": ["evaluate", "vanilla", "--reading_params_path", tiny_checkpoints["vanilla"],
                     "--outputs_path", target],
        "pretrain": ["pretrain", "vanilla", "--writing_params_path", target, *TINY, "--quiet"],
        "finetune": ["finetune", "vanilla", "--writing_params_path", target, *TINY, "--quiet"],
    }[command]
    assert_one_line_error(*cli(*args), str(target), "does not exist")
    assert not (tmp_path / "no_such_folder").exists()


@pytest.mark.parametrize("flag, value", [("--max_epochs", "0"), ("--batch_size", "-1"), ("--batch_size", "many"),
                                         ("--learning_rate", "0")])
def test_bad_numbers(tmp_path, flag, value):
    out = tmp_path / "p.safetensors"
    res = cli("pretrain", "vanilla", "--writing_params_path", out, flag, value, "--quiet")
    assert_one_line_error(*res, flag)
    assert not out.exists()


def test_checkpoint_of_the_other_variant(tmp_path, tiny_checkpoints):
    ck = tiny_checkpoints["synthesizer"]
    out = tmp_path / "preds.txt"
    res = cli("evaluate", "vanilla", "--reading_params_path", ck, "--outputs_path", out)
    assert_one_line_error(*res, str(ck), "synthesizer")
    assert not out.exists()
    res = cli("finetune", "vanilla", "--reading_params_path", ck, "--writing_params_path", tmp_path / "f", "--quiet")
    assert_one_line_error(*res, str(ck), "variant")
    assert files_in(tmp_path) == set()


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.params"
    junk.write_bytes(os.urandom(2000))
    res = cli("evaluate", "vanilla", "--reading_params_path", junk, "--outputs_path", tmp_path / "preds.txt")
    assert_one_line_error(*res, str(junk))
    assert files_in(tmp_path) == {"junk.params"}


SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}


def test_exit_codes_in_a_real_process(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "factgpt", "baseline", "london"], capture_output=True, text=True,
                        env=SUBPROCESS_ENV, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "Correct: 25 out of 500: 5.0%\n"
    missing = tmp_path / "missing.txt"
    bad = subprocess.run([sys.executable, "-m", "factgpt", "pretrain", "vanilla", str(missing),
                          "--writing_params_path", str(tmp_path / "p.safetensors"), "--quiet"],
                         capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120)
    assert_one_line_error(bad.returncode, bad.stdout, bad.stderr, str(missing), "no such file")
    flag = subprocess.run([sys.executable, "-m", "factgpt", "pretrain", "vanilla", "--writing_params_path",
                           str(tmp_path / "p.safetensors"), "--max_epochs", "0"],
                          capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120)
    assert_one_line_error(flag.returncode, flag.stdout, flag.stderr, "--max_epochs")
    assert files_in(tmp_path) == set()
    # `ask` leaves through os._exit (cli.entry): what it printed still arrives whole, through a pipe,
    # and a bad question still gives its exit code
    asked = subprocess.run([sys.executable, "-m", "factgpt", "ask", "--json"], input="Ralf Wadephul\n\u2603\n",
                           capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120)
    assert asked.returncode == 2, asked.stderr
    first, second = [json.loads(line) for line in asked.stdout.splitlines()]
    assert first["question"] == "Where was Ralf Wadephul born?" and "error" in second


# ---- end to end ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    r = {"dir": d}
    r["pretrain"] = cli("pretrain", "vanilla", "--writing_params_path", d / "pre.safetensors", *TINY,
                        "--max_epochs", "1", "--quiet")
    r["finetune"] = cli("finetune", "vanilla", "--reading_params_path", d / "pre.safetensors",
                        "--writing_params_path", d / "ft.safetensors", "--max_epochs", "1", "--quiet")
    r["evaluate"] = cli("evaluate", "vanilla", "--reading_params_path", d / "ft.safetensors",
                        "--outputs_path", d / "dev.predictions")
    # the reference decoder (no cache, one question at a time) on the first 60 dev questions
    head = "".join(bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:60])
    (d / "dev60.tsv").write_text(head, encoding="utf-8")
    r["evaluate_reference"] = cli("evaluate", "vanilla", "--reading_params_path", d / "ft.safetensors",
                                  "--eval_corpus_path", d / "dev60.tsv",
                                  "--outputs_path", d / "dev60.reference.predictions", "--reference")
    r["test"] = cli("evaluate", "vanilla", "--reading_params_path", d / "ft.safetensors",
                    "--eval_corpus_path", bundled_path("birth_test_inputs.tsv"), "--outputs_path", d / "test.predictions")
    r["ask"] = cli("ask", "Where was Ann Smith born?", "--reading_params_path", d / "ft.safetensors")
    return r


def test_e2e_pretrain_and_finetune(e2e):
    d = e2e["dir"]
    for stage, steps in (("pretrain", 23), ("finetune", 8)):
        rc, out, err = e2e[stage]
        assert rc == 0, err
        assert f"{stage}: {steps} steps" in err
        hist = json.loads((d / f"{'pre' if stage == 'pretrain' else 'ft'}.safetensors.history.json").read_text())
        assert len(hist["history"]) == steps
        assert all(h["loss"] > 0 for h in hist["history"])
    from factgpt.checkpoint import load_model

    pre, meta = load_model(d / "pre.safetensors")
    assert (pre.config.n_layer, pre.config.n_head, pre.config.n_embd) == (1, 2, 32)
    assert meta["stage"] == "pretrain" and meta["steps"] == 23
    ft, meta = load_model(d / "ft.safetensors")
    assert ft.config == pre.config
    assert meta["stage"] == "finetune_pretrained" and meta["pretrained"] == str(d / "pre.safetensors")
    assert not torch.equal(ft.head.weight, pre.head.weight)


def test_e2e_evaluate(e2e):
    d = e2e["dir"]
    rc, out, err = e2e["evaluate"]
    assert rc == 0, err
    m = CORRECT.search(out)
    assert m, out
    lines = (d / "dev.predictions").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 501 and lines[-1] == ""
    rows = [line.split("\t") for line in bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()]
    correct = sum(p == a for p, (_, a) in zip(lines, rows))
    assert int(m.group(1)) == correct
    assert float(m.group(2)) == pytest.approx(100 * correct / 500)
    # the reference decoder gives the same predictions
    rc, out2, err2 = e2e["evaluate_reference"]
    assert rc == 0, err2
    m2 = re.search(r"^Correct: (\d+) out of 60: ", out2, re.M)
    assert m2 and int(m2.group(1)) == sum(p == a for p, (_, a) in zip(lines[:60], rows))
    assert (d / "dev60.reference.predictions").read_text(encoding="utf-8").splitlines() == lines[:60]


def test_e2e_evaluate_without_answers(e2e):
    d = e2e["dir"]
    rc, out, err = e2e["test"]
    assert rc == 0, err
    assert "No gold answers" in out and "437 predictions" in out and "Correct" not in out
    assert len((d / "test.predictions").read_text(encoding="utf-8").splitlines()) == 437


def test_e2e_ask(e2e):
    rc, out, err = e2e["ask"]
    assert rc == 0, err
    m = re.fullmatch(r"(.*)\t\(probability (\d\.\d{3}); first character (\d\.\d{3})\)\n", out, re.S)
    assert m, out
    assert "\u2047" not in m.group(1) and "\n" not in m.group(1)
    assert 0 <= float(m.group(2)) <= float(m.group(3)) <= 1


def test_ask_with_a_question_outside_the_vocabulary(e2e):
    rc, out, err = cli("ask", "Where was \u2603 born?", "--reading_params_path", e2e["dir"] / "ft.safetensors")
    assert_one_line_error(rc, out, err, "\u2603")


def test_ask_long_question_on_a_synthesizer(tiny_checkpoints):
    q = "Where was " + "x" * 80 + " born?"  # 96 characters: the longest `ask` accepts
    rc, out, err = cli("ask", q, "--reading_params_path", tiny_checkpoints["synthesizer"])
    assert rc == 0 and "probability" in out


# ---- reproduce ---------------------------------------------------------------------------------------------


def test_reproduce_tiny_profile(tiny_study):
    rc, out, err, args = tiny_study["rc"], tiny_study["out"], tiny_study["err"], tiny_study["args"]
    assert rc == 0, err
    res_dir = tiny_study["dir"]
    assert res_dir is not None, f"expected one new run folder under runs/, found {tiny_study['runs']}"
    assert f"wrote {res_dir.relative_to(tiny_study['cwd'])}/" in err  # it says where it wrote
    # the committed results are left alone
    assert (tiny_study["cwd"] / "results" / "tiny" / "results.json").read_text() == '{"committed": true}\n'
    assert sorted(p.name for p in (tiny_study["cwd"] / "results").rglob("*")) == ["results.json", "tiny"]
    results = json.loads((res_dir / "results.json").read_text())
    assert results["profile"] == "tiny" and results["seeds"] == [0]
    assert results["command"] == "factgpt " + " ".join(args)
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", results["commit"])
    assert "CPU" in results["device"] and results["precision"] == "fp32"
    assert results["torch"] == torch.__version__
    assert TINY_PROFILE["model"].items() <= results["profile_settings"]["model"].items()

    rows = results["rows"]
    assert list(rows) == ["london", "vanilla_nopretrain", "vanilla_pretrain", "synthesizer_pretrain"]
    assert rows["london"]["mean"] == 5.0 and rows["london"]["std"] == 0.0
    assert rows["london"]["runs"][0]["correct"] == 25
    stages = {"london": set(), "vanilla_nopretrain": {"finetune", "evaluate"},
              "vanilla_pretrain": {"pretrain", "finetune", "evaluate"},
              "synthesizer_pretrain": {"pretrain", "finetune", "evaluate"}}
    for row, r in rows.items():
        (run,) = r["runs"]
        assert run["seed"] == 0 and run["total"] == 500
        assert run["accuracy"] == pytest.approx(100 * run["correct"] / 500)
        assert r["mean"] == pytest.approx(run["accuracy"])
        assert set(run["seconds"]) == stages[row]
        assert all(v > 0 for v in run["seconds"].values())
        dev = (res_dir / "seed0" / f"{row}.dev.predictions").read_text(encoding="utf-8").splitlines()
        test = (res_dir / "seed0" / f"{row}.test.predictions").read_text(encoding="utf-8").splitlines()
        assert len(dev) == 500 and len(test) == 437
        gold = [line.split("\t")[1] for line in bundled_path("birth_dev.tsv").read_text(encoding="utf-8").splitlines()]
        assert sum(p == g for p, g in zip(dev, gold)) == run["correct"]
    assert set(rows["vanilla_pretrain"]["runs"][0]["final_loss"]) == {"pretrain", "finetune"}

    table = (res_dir / "table.md").read_text(encoding="utf-8")
    assert table in out
    for title in ("London baseline", "vanilla, no pretraining", "vanilla, pretrain → finetune",
                  "synthesizer, pretrain → finetune"):
        assert title in table
    assert "| London baseline | 5.0% (1 seed) | 5.0 |" in table
    assert "partial" not in results
    for png in ("accuracy.png", "pretrain_loss.png", "finetune_loss.png"):
        data = (res_dir / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
    for ck in ("vanilla.nopretrain", "vanilla.pretrain", "vanilla.finetune", "synthesizer.pretrain",
               "synthesizer.finetune"):
        assert (res_dir / "seed0" / f"{ck}.safetensors").is_file()
    assert not list(res_dir.rglob("*.tmp"))


def test_reproduce_cut_short_keeps_the_rows_it_finished(tmp_path, monkeypatch):
    import factgpt.study as study

    prof = tmp_path / "tiny.json"
    prof.write_text(json.dumps(TINY_PROFILE))
    def stop_at_pretraining(*a, **k):  # the run is stopped (e.g. by a time limit) when pretraining starts
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "pretrain_stage", stop_at_pretraining)
    rc, out, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "res", "--quiet", "--seeds", "3",
                       "--device", "cpu")
    assert rc == 130 and f"Go on with: factgpt reproduce --out {tmp_path / 'res'} --resume" in err
    results = json.loads((tmp_path / "res" / "results.json").read_text())
    assert results["partial"] is True and results["seeds"] == [3]
    assert list(results["rows"]) == ["london", "vanilla_nopretrain"]


PIECES_PROFILE = {**TINY_PROFILE, "description": "test profile: a few steps a stage",
                  "pretrain": {**TINY_PROFILE["pretrain"], "batch_size": 1024},
                  "finetune_pretrained": {**TINY_PROFILE["finetune_pretrained"], "batch_size": 1024},
                  "finetune_scratch": {**TINY_PROFILE["finetune_scratch"], "batch_size": 1024}}


def test_reproduce_in_pieces_gives_the_one_run_bit_for_bit(tmp_path):
    prof = tmp_path / "pieces.json"
    prof.write_text(json.dumps(PIECES_PROFILE))
    common = ["--quiet", "--device", "cpu", "--precision", "fp32"]
    rc, _, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "whole", "--seeds", "1",
                     "--variants", "vanilla", *common)
    assert rc == 0, err
    # a time limit of a millionth of a minute: every piece takes one step of one stage and stops
    rc, _, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "parts", "--seeds", "1",
                     "--variants", "vanilla", "--time_limit", "0.000001", *common)
    assert rc == 0 and "Go on with: factgpt reproduce --out" in err, err
    pieces, log = 1, err
    while json.loads((tmp_path / "parts" / "results.json").read_text()).get("partial"):
        assert list((tmp_path / "parts" / "seed1").glob("*.state")), "a stopped stage leaves its state"
        rc, _, err = cli("reproduce", "--out", tmp_path / "parts", "--resume", "--time_limit", "0.000001", *common)
        assert rc == 0, err
        pieces, log = pieces + 1, log + err
        assert pieces < 40
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    parts = json.loads((tmp_path / "parts" / "results.json").read_text())
    assert "done in an earlier piece (vanilla.pretrain.safetensors)" in log  # a finished stage is loaded, not rerun
    assert len(parts["pieces"]) == pieces and parts["seeds"] == [1] and "partial" not in parts
    assert parts["plan"] == {"profile": str(prof), "seeds": [1], "variants": ["vanilla"]}
    assert list(parts["rows"]) == list(whole["rows"])
    for row in whole["rows"]:
        assert parts["rows"][row]["runs"][0]["correct"] == whole["rows"][row]["runs"][0]["correct"], row
        assert parts["rows"][row]["runs"][0].get("final_loss") == whole["rows"][row]["runs"][0].get("final_loss")
        for split in ("dev", "test"):
            name = f"seed1/{row}.{split}.predictions"
            assert (tmp_path / "parts" / name).read_text() == (tmp_path / "whole" / name).read_text(), name
    from safetensors.torch import load_file

    for ck in ("vanilla.nopretrain", "vanilla.pretrain", "vanilla.finetune"):
        a, b = (load_file(tmp_path / d / "seed1" / f"{ck}.safetensors") for d in ("whole", "parts"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), ck
    assert not list((tmp_path / "parts").rglob("*.state"))  # states go once their stage is saved
    assert (tmp_path / "parts" / "table.md").is_file()


def test_a_resumed_stage_gets_its_whole_piece_of_time(tmp_path):
    """time_left_s counts from the resume, not from the stage's first piece: a stage that has
    already trained for a (recorded) million seconds still runs to the end in a long piece."""
    from factgpt.checkpoint import load_tensors, save_tensors
    from factgpt.pipeline import load_corpus, load_profile, pretrain_stage

    prof_path = tmp_path / "pieces.json"
    prof_path.write_text(json.dumps(PIECES_PROFILE))
    prof, corpus = load_profile(str(prof_path)), load_corpus(bundled_path("wiki.txt"))
    path = tmp_path / "pre.safetensors"
    tr, status = pretrain_stage(prof, corpus, "vanilla", torch.device("cpu"), path, "p", quiet=True,
                                train_overrides={"precision": "fp32"}, time_left_s=0.0)
    assert status == "stopped" and tr.progress.step == 1
    tensors, meta = load_tensors(f"{path}.state")
    meta["progress"]["elapsed"] = 1e6
    save_tensors(f"{path}.state", tensors, meta)
    tr, status = pretrain_stage(prof, corpus, "vanilla", torch.device("cpu"), path, "p", quiet=True,
                                train_overrides={"precision": "fp32"}, resume=True, time_left_s=3600.0)
    assert status == "done" and tr.progress.step == tr.total_steps > 2


def test_reproduce_resume_refuses_what_it_cannot_go_on_with(tmp_path):
    prof = tmp_path / "pieces.json"
    prof.write_text(json.dumps(PIECES_PROFILE))
    common = ["--quiet", "--device", "cpu", "--precision", "fp32"]
    assert_one_line_error(*cli("reproduce", "--resume", *common), "--resume", "needs --out")
    assert_one_line_error(*cli("reproduce", "--out", tmp_path / "none", "--resume", *common),
                          "no run to resume here")
    rc, _, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "run", "--seeds", "2", "--variants", "vanilla",
                     "--time_limit", "0.000001", *common)
    assert rc == 0, err
    assert_one_line_error(*cli("reproduce", "--out", tmp_path / "run", "--resume", "--seeds", "0", *common),
                          "this run is of --seeds [2]")
    assert_one_line_error(*cli("reproduce", "--out", tmp_path / "run", "--resume", "--profile", "smoke", *common),
                          "this run is of --profile")
    # a reworded description is the same training; a changed setting is not
    prof.write_text(json.dumps({**PIECES_PROFILE, "pretrain": {**PIECES_PROFILE["pretrain"], "learning_rate": 1e-3}}))
    assert_one_line_error(*cli("reproduce", "--out", tmp_path / "run", "--resume", *common), "has changed")


# ---- more bad inputs: TSV content, sizes, vocabularies, damaged checkpoints -------------------------
@pytest.mark.parametrize("content, expect", [
    ("Where was A born?\tParis\n\tRome\n", (":2: ", "empty question")),
    ("Where was A born?\tParis\nWhere was B born?\t\n", (":2: ", "empty answer")),
    ("Where was A born?\tParis\nWhere was " + "x" * 120 + " born?\tRome\n", (":2: ", "block size")),
])
def test_bad_tsv_content(tmp_path, content, expect):
    bad = tmp_path / "bad.tsv"
    bad.write_text(content, encoding="utf-8")
    res = cli("finetune", "vanilla", "--finetune_corpus_path", bad, "--writing_params_path", tmp_path / "m",
              *TINY, "--max_epochs", "1", "--quiet")
    assert_one_line_error(*res, str(bad), *expect)
    assert files_in(tmp_path) == {"bad.tsv"}


def test_question_too_long_for_evaluation(tmp_path, tiny_checkpoints):
    bad = tmp_path / "long.tsv"
    bad.write_text("Where was " + "x" * 130 + " born?\n", encoding="utf-8")
    res = cli("evaluate", "vanilla", "--reading_params_path", tiny_checkpoints["vanilla"],
              "--eval_corpus_path", bad, "--outputs_path", tmp_path / "preds")
    assert_one_line_error(*res, f"{bad}:1: ", "block size")
    assert not (tmp_path / "preds").exists()


def test_checkpoint_of_another_vocabulary(tmp_path, tiny_checkpoints):
    corpus = tmp_path / "other.txt"
    corpus.write_text("Ann Lee. Ann Lee was born in Oslo.\nBo Kim. Bo Kim was born in Rome.\n", encoding="utf-8")
    res = cli("evaluate", "vanilla", corpus, "--reading_params_path", tiny_checkpoints["vanilla"],
              "--outputs_path", tmp_path / "preds")
    assert_one_line_error(*res, str(tiny_checkpoints["vanilla"]), "vocabulary")
    assert not (tmp_path / "preds").exists()


def test_truncated_checkpoint(tmp_path, tiny_checkpoints):
    cut = tmp_path / "cut.safetensors"
    data = Path(tiny_checkpoints["vanilla"]).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    res = cli("evaluate", "vanilla", "--reading_params_path", cut, "--outputs_path", tmp_path / "preds")
    assert_one_line_error(*res, str(cut))
    assert files_in(tmp_path) == {"cut.safetensors"}


def test_resume_state_of_another_model_size(tmp_path):
    args = ["finetune", "vanilla", "--max_epochs", "2", "--quiet", "--writing_params_path", tmp_path / "m"]
    assert cli(*args, *TINY, "--time_limit", "0.00001")[0] == 0
    assert (tmp_path / "m.state").exists()
    res = cli(*args, "--n_layer", "2", "--n_head", "2", "--n_embd", "32", "--resume")
    assert_one_line_error(*res, "m.state", "another model")
    assert not (tmp_path / "m").exists()


def test_ctrl_c_saves_the_stage_and_says_how_to_resume_bit_for_bit(tmp_path):
    """Ctrl-C (SIGINT, sent by the run to itself after a step: no timing race) stops at the end of the
    step in flight with the stage's state saved; the printed command finishes the run as if never stopped."""
    prof = tmp_path / "pieces.json"
    prof.write_text(json.dumps(PIECES_PROFILE))
    common = ["--quiet", "--device", "cpu", "--precision", "fp32", "--seeds", "1", "--variants", "vanilla"]
    rc, _, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "whole", *common)
    assert rc == 0, err
    interrupter = ("import os, signal, sys\n"
                   "import factgpt.train as t\n"
                   "step = t.Trainer.step\n"
                   "def step_then_ctrl_c(self, batch):\n"
                   "    loss = step(self, batch)\n"
                   "    if self.progress.step == 1 and sys._getframe(1).f_code.co_name == '_loop':\n"  # not the estimate's
                   "        os.kill(os.getpid(), signal.SIGINT)\n"
                   "    return loss\n"
                   "t.Trainer.step = step_then_ctrl_c\n"
                   "from factgpt.cli import main\n"
                   "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["reproduce", "--profile", str(prof), "--out", str(tmp_path / "parts"), *common]
    proc = subprocess.run([sys.executable, "-c", interrupter, *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 130, proc.stderr
    assert f"Go on with: factgpt reproduce --out {tmp_path / 'parts'} --resume" in proc.stderr
    assert "Traceback" not in proc.stderr
    states = list((tmp_path / "parts" / "seed1").glob("*.state"))
    assert len(states) == 1  # the interrupted stage's, saved at a step's end
    rc, _, err = cli("reproduce", "--out", tmp_path / "parts", "--resume", "--quiet", "--device", "cpu",
                     "--precision", "fp32")
    assert rc == 0, err
    from safetensors.torch import load_file

    for ck in ("vanilla.nopretrain", "vanilla.pretrain", "vanilla.finetune"):
        a, b = (load_file(tmp_path / d / "seed1" / f"{ck}.safetensors") for d in ("whole", "parts"))
        assert all(torch.equal(a[k], b[k]) for k in a), ck


def _fake_estimate(hours: float):
    from factgpt.estimate import SeedEstimate

    return lambda *a, **k: SeedEstimate({"vanilla": hours * 3600}, 0.0, 0.0, 0.0)


def test_reproduce_runs_a_study_of_hours_without_asking(tmp_path, monkeypatch):
    import factgpt.study as study

    prof = tmp_path / "pieces.json"
    prof.write_text(json.dumps(PIECES_PROFILE))
    monkeypatch.setattr(study, "estimate_seed", _fake_estimate(5.0))
    rc, _, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "res", "--quiet", "--seeds", "0",
                     "--variants", "vanilla", "--device", "cpu", "--precision", "fp32")
    assert rc == 0, err
    assert "training in fp32; 1 seed; estimated 300 minutes a seed" in err and "5.0 h in all" in err


def test_a_profile_that_names_its_precision_keeps_it_under_auto(tmp_path, monkeypatch):
    """A profile that says fp32 trains in fp32 under --precision auto, even where bf16 would be chosen."""
    import factgpt.precision as precision
    import factgpt.study as study

    monkeypatch.setattr(precision, "bf16_shown_to_train_here", lambda profile=None: True)
    assert precision.resolve("auto", torch.device("cpu"), training=True) == "bf16"  # what auto would pick
    prof = tmp_path / "fp32.json"
    prof.write_text(json.dumps({**PIECES_PROFILE, "common": {**PIECES_PROFILE.get("common", {}), "precision": "fp32"}}))
    monkeypatch.setattr(study, "estimate_seed", _fake_estimate(0.01))
    rc, _, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "res", "--quiet", "--seeds", "0",
                     "--variants", "vanilla", "--device", "cpu")
    assert rc == 0, err
    assert "training in fp32" in err
    assert json.loads((tmp_path / "res" / "results.json").read_text())["precision"] == "fp32"
    history = json.loads((tmp_path / "res" / "seed0" / "vanilla.pretrain.safetensors.history.json").read_text())
    assert history["precision"] == "fp32"


def test_reproduce_asks_only_before_many_hours_and_leaves_no_folder(tmp_path, monkeypatch):
    import factgpt.study as study

    prof = tmp_path / "pieces.json"
    prof.write_text(json.dumps(PIECES_PROFILE))
    monkeypatch.setattr(study, "estimate_seed", _fake_estimate(study.ASK_ABOVE_HOURS + 1))
    rc, _, err = cli("reproduce", "--profile", prof, "--out", tmp_path / "res", "--quiet", "--seeds", "0",
                     "--variants", "vanilla", "--device", "cpu")
    assert rc == 2 and "pass --yes" in err.strip().splitlines()[-1]
    assert not (tmp_path / "res").exists()


def test_the_seed_estimate_counts_every_stage(tmp_path):
    from factgpt.estimate import estimate_seed
    from factgpt.pipeline import load_corpus, load_profile, load_qa

    prof_path = tmp_path / "pieces.json"
    prof_path.write_text(json.dumps(PIECES_PROFILE))
    prof = load_profile(str(prof_path))
    corpus = load_corpus(bundled_path("wiki.txt"))
    dev = load_qa(bundled_path("birth_dev.tsv"), corpus.vocab, False, prof.model.block_size)
    est = estimate_seed(prof, corpus, ["vanilla", "synthesizer"], torch.device("cpu"), dev, precision="fp32")
    assert set(est.pretrain) == {"vanilla", "synthesizer"}
    assert min(est.pretrain.values()) > 0 and est.finetune_pretrained > 0 and est.finetune_scratch > 0
    assert est.evaluate > 0
    assert est.total == pytest.approx(sum(est.pretrain.values()) + 2 * est.finetune_pretrained
                                      + est.finetune_scratch + est.evaluate)
    assert "pretrain synthesizer" in est.describe()


def test_a_recipe_refuses_the_study_flags_it_would_ignore():
    assert_one_line_error(*cli("reproduce", "--recipe", "mix25", "--variants", "synthesizer"), "--variants")
    assert_one_line_error(*cli("reproduce", "--recipe", "mix25", "--precision", "bf16"), "--precision")


def test_tables_show_which_runs_had_uncommitted_changes():
    from factgpt.tables import _commits

    shown = _commits(["a23f7f4d0b20ffff-dirty", "11a612e8a180ffff", "11a612e8a180ffff"])
    assert shown == "`a23f7f4d0b20-dirty`, `11a612e8a180`"


def test_lab_commands_write_a_new_run_folder_by_default(tmp_path, monkeypatch):
    """A command run without --out never writes into the committed results/: it makes runs/NAME-DATE-TIME,
    a new one each time (schedule stands for abstention, analyze, explore, bench and curve, which share
    run_folder; the curve also refuses --resume without the folder it should go on with)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    for _ in range(2):
        rc, out, err = cli("schedule", "--profile", "smoke")
        assert rc == 0, err
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.startswith("schedule-") for r in runs), runs
    assert all((tmp_path / "runs" / r / "smoke_pretrain_lr.json").is_file() for r in runs)
    assert not any((tmp_path / "results").iterdir())
    assert_one_line_error(*cli("curve", "--profile", "smoke", "--resume"), "--resume", "needs --out")
