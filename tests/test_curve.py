"""`factgpt curve`: probes at the chosen epochs, a stopped curve resumed exactly, bad input in one line;
the line changes a profile's data section asks for."""

from __future__ import annotations

import json

import pytest

from factgpt.checkpoint import load_model
from factgpt.cli import main
from factgpt.config import DataSettings
from factgpt.curve import probe_epochs
from factgpt.datasets import documents
from factgpt.errors import InputError
from factgpt.lines import change_lines, pretraining_lines
from factgpt.people import line_name

from conftest import TINY_PROFILE

pytestmark = pytest.mark.usefixtures("single_thread")

# Three short epochs of pretraining on focused lines, the course's finetune for one epoch at each probe.
CURVE_PROFILE = {**TINY_PROFILE, "data": {"birth_front": True, "max_chars": 40},
                 "pretrain": {"max_epochs": 3, "batch_size": 256, "learning_rate": 6e-3}}
TIMINGS = ("pretrain_minutes", "probe_seconds")


def test_probe_epochs():
    assert probe_epochs(30, 10) == [10, 20, 30]
    assert probe_epochs(25, 10, [3]) == [3, 10, 20, 25]  # the last epoch always
    with pytest.raises(InputError, match="outside"):
        probe_epochs(10, 5, [11])


def _curve(tmp_path, out, *extra):
    prof = tmp_path / "curve.json"
    prof.write_text(json.dumps(CURVE_PROFILE))
    return main(["curve", "--profile", str(prof), "--probe_every", "2", "--out", str(out), "--quiet",
                 "--device", "cpu", "--precision", "fp32", *extra])


def _probes(out):
    rec = json.loads((out / "curve.json").read_text())
    return rec, [{k: v for k, v in p.items() if k not in TIMINGS} for p in rec["probes"]]


@pytest.mark.slow
def test_a_stopped_curve_resumes_to_the_same_probes(tmp_path, capsys):
    assert _curve(tmp_path, tmp_path / "whole", "--keep_weights") == 0
    whole, probes = _probes(tmp_path / "whole")
    for ep in (2, 3):  # each probe's pretrained weights, kept
        model, meta = load_model(tmp_path / "whole" / f"pretrain-epoch00{ep}.safetensors")
        assert meta["epoch"] == ep and model.config.variant == "vanilla"
    assert [p["epoch"] for p in probes] == [2, 3] and whole["pretrain_done"]
    for p in probes:
        assert p["heldout_total"] == 300 and 0 <= p["heldout_correct"] <= 300
        assert p["line_recall_pretrained"]["of_people"] == 300
    assert (tmp_path / "whole" / "curve.png").read_bytes().startswith(b"\x89PNG")
    # stopped after its first step (a time limit of a millionth of a minute), then resumed
    assert _curve(tmp_path, tmp_path / "parts", "--time_limit", "0.000001") == 0
    first, none = _probes(tmp_path / "parts")
    assert none == [] and not first["pretrain_done"]
    assert "go on with --resume" in capsys.readouterr().err
    assert _curve(tmp_path, tmp_path / "parts", "--resume", "--max_epochs", "4") == 2  # other settings: refused
    assert "another profile" in capsys.readouterr().err
    assert _curve(tmp_path, tmp_path / "parts", "--resume") == 0
    resumed, again = _probes(tmp_path / "parts")
    assert again == probes and resumed["pretrain_done"] and len(resumed["pieces"]) == 2 and "partial" not in resumed
    assert first["partial"] and first["format"] == "factgpt-curve-2"
    # a second start over a curve is refused; so is a resume with other settings
    assert _curve(tmp_path, tmp_path / "parts") == 2
    assert "already here" in capsys.readouterr().err
    assert _curve(tmp_path, tmp_path / "parts", "--resume") == 2  # a finished curve: nothing to resume
    assert "complete" in capsys.readouterr().err


def test_curve_bad_input_is_one_line(tmp_path, capsys):
    assert _curve(tmp_path, tmp_path / "none", "--resume") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("no run to resume here (start it without --resume)") and "\n" not in err
    assert main(["curve", "--profile", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_line_changes_keep_every_line_and_its_person(wiki_text):
    plain = documents(wiki_text)
    for data in (DataSettings(birth_front=True), DataSettings(question_key=True), DataSettings(name_key=True),
                 DataSettings(birth_front=True, question_key=True)):
        changed = documents(change_lines(wiki_text, data))
        assert len(changed) == len(plain)
        for before, after in zip(plain[:300], changed[:300]):
            name = line_name(before)
            assert name in after
            if data.question_key:
                assert after.startswith(f"Where was {name} born? ")
            if not (data.question_key or data.name_key):
                assert sorted(after.replace(" ", "")) == sorted(before.replace(" ", ""))  # moved, nothing lost
    assert change_lines(wiki_text, DataSettings()) == wiki_text
    lines = pretraining_lines(wiki_text, DataSettings(birth_front=True, question_key=True, max_chars=80))
    assert all(len(v) <= 80 and v.startswith(f"Where was {k} born? ") for k, v in lines.items())
