"""`factgpt reproduce` (study.py): what a study run records, and a study finetuned from given checkpoints."""

import json

import pytest
import torch

from factgpt.cli import main


@pytest.fixture
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tiny study ran: the same arithmetic, the same answers
    yield
    torch.set_num_threads(old)


def test_a_study_from_given_checkpoints_answers_as_the_run_that_pretrained_them(tiny_study, tmp_path, one_thread,
                                                                               capsys):
    """`reproduce --pretrained SEED_DIR` finetunes the folder's pretrained models and evaluates its
    model without pretraining: every row answers what the original run's answered."""
    seed0 = tiny_study["dir"] / "seed0"
    original = json.loads((tiny_study["dir"] / "results.json").read_text())
    prof = tiny_study["cwd"] / "tiny.json"
    out = tmp_path / "again"
    args = ["reproduce", "--profile", str(prof), "--pretrained", str(seed0), "--out", str(out), "--quiet",
            "--device", "cpu", "--precision", "fp32"]
    assert main(args) == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    assert res["pretrained_from"] == str(seed0) and res["plan"]["pretrained"] == str(seed0)
    for row, r in original["rows"].items():
        assert res["rows"][row]["runs"][0]["correct"] == r["runs"][0]["correct"], row
    runs = {row: r["runs"][0] for row, r in res["rows"].items()}
    assert "pretrain" not in runs["vanilla_pretrain"]["seconds"] and "finetune" in runs["vanilla_pretrain"]["seconds"]
    assert runs["vanilla_pretrain"]["pretrained_from"].endswith("vanilla.pretrain.safetensors")
    assert runs["vanilla_nopretrain"]["seconds"].keys() == {"evaluate"}  # loaded, not trained again
    for variant in ("vanilla", "synthesizer"):  # the predictions are the original's, line for line
        assert (out / "seed0" / f"{variant}_pretrain.dev.predictions").read_text() == \
            (seed0 / f"{variant}_pretrain.dev.predictions").read_text()
    assert not (out / "seed0" / "vanilla.pretrain.safetensors").exists()  # nothing pretrained here


@pytest.mark.parametrize("extra, named, why", [
    (["--seeds", "0", "1"], "--pretrained", "run one seed"),
    (["--variants", "vanilla"], "nothing", "no such folder"),
])
def test_pretrained_checkpoints_are_checked_before_anything_runs(tiny_study, tmp_path, extra, named, why, capsys):
    seed0 = tiny_study["dir"] / "seed0"
    folder = seed0 if named != "nothing" else tmp_path / "nothing"
    out = tmp_path / "run"
    rc = main(["reproduce", "--profile", str(tiny_study["cwd"] / "tiny.json"), "--pretrained", str(folder),
               "--out", str(out), "--quiet", "--device", "cpu", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and why in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_checkpoint_of_another_model_size_is_refused(tiny_study, tmp_path, capsys):
    seed0 = tiny_study["dir"] / "seed0"
    prof = json.loads((tiny_study["cwd"] / "tiny.json").read_text())
    prof["model"] = {**prof["model"], "n_embd": 64}
    other = tmp_path / "wider.json"
    other.write_text(json.dumps(prof))
    rc = main(["reproduce", "--profile", str(other), "--pretrained", str(seed0), "--out", str(tmp_path / "run"),
               "--quiet", "--device", "cpu", "--precision", "fp32", "--variants", "vanilla"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "n_embd=32, expected 64" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
