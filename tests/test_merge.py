"""factgpt merge (factgpt/merge.py): one record from runs of a study or a recipe made apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factgpt.cli import main

from test_cli import assert_one_line_error, cli


def _fake_results(folder: Path, profile: str, seeds: list[int], partial: bool = False, bump: int = 0,
                  row: str = "vanilla_pretrain", precision: str = "fp32") -> Path:
    rows = {"london": {"runs": [{"seed": s, "correct": 25, "total": 500, "accuracy": 5.0, "seconds": {}}
                                for s in seeds]},
            row: {"runs": [{"seed": s, "correct": 100 + s + bump, "total": 500, "accuracy": (100 + s + bump) / 5,
                            "seconds": {"pretrain": 60.0}} for s in seeds]}}
    res = {"profile": profile, "description": "", "command": f"factgpt reproduce --seeds {seeds}",
           "device": "NVIDIA H200", "precision": precision, "torch": "2.x", "commit": "abc", "seeds": seeds,
           "reference": {"london": 5.0, "vanilla_pretrain": 26.6}, "rows": rows}
    if partial:
        res["partial"] = True
    folder.mkdir(parents=True)
    for s in seeds:
        (folder / f"seed{s}").mkdir()
        (folder / f"seed{s}" / "london.dev.predictions").write_text("London\n")
        (folder / f"seed{s}" / "vanilla.pretrain.safetensors").write_bytes(b"weights stay behind")
    (folder / "results.json").write_text(json.dumps(res))
    return folder / "results.json"


def test_merge_joins_seeds_run_apart(tmp_path):
    a = _fake_results(tmp_path / "a", "course", [0])
    b = _fake_results(tmp_path / "b", "course", [2, 1], partial=True)
    rc, out, err = cli("merge", a, b, "--out", tmp_path / "m")
    assert rc == 0, err
    m = json.loads((tmp_path / "m" / "results.json").read_text())
    assert m["seeds"] == [0, 1, 2] and m["partial"] is True and m["commit"] == "abc"
    assert m["merged_from"] == [str(a), str(b)] and len(m["command"]) == 2
    runs = m["rows"]["vanilla_pretrain"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    assert m["rows"]["vanilla_pretrain"]["mean"] == pytest.approx(20.2)
    assert m["rows"]["vanilla_pretrain"]["std"] == pytest.approx(0.2)
    for s in (0, 1, 2):
        assert (tmp_path / "m" / f"seed{s}" / "london.dev.predictions").is_file()
        assert not (tmp_path / "m" / f"seed{s}" / "vanilla.pretrain.safetensors").exists()
    table = (tmp_path / "m" / "table.md").read_text()
    assert table in out and "Partial" in table and "20.2% ± 0.2" in table


def test_merge_joins_variants_run_apart(tmp_path):
    a = _fake_results(tmp_path / "a", "course", [1])
    b = _fake_results(tmp_path / "b", "course", [1], row="synthesizer_pretrain", precision="tf32")
    (b.parent / "seed1" / "london.dev.predictions").write_text("London (second run)\n")
    rc, out, err = cli("merge", a, b, "--out", tmp_path / "m")
    assert rc == 0, err
    m = json.loads((tmp_path / "m" / "results.json").read_text())
    assert m["seeds"] == [1] and set(m["rows"]) == {"london", "vanilla_pretrain", "synthesizer_pretrain"}
    assert len(m["rows"]["london"]["runs"]) == 1  # in both runs, kept once
    assert m["precision"] == "fp32 + tf32"
    assert m["rows"]["synthesizer_pretrain"]["runs"][0]["precision"] == "tf32"
    assert m["rows"]["vanilla_pretrain"]["runs"][0]["precision"] == "fp32"
    b_res = json.loads(b.read_text())  # a second device: each run keeps its own, the header names both
    b.write_text(json.dumps({**b_res, "device": "NVIDIA H100"}))
    rc, out, err = cli("merge", a, b, "--out", tmp_path / "m3")
    assert rc == 0, err
    m = json.loads((tmp_path / "m3" / "results.json").read_text())
    assert m["device"] == "NVIDIA H200 + NVIDIA H100"
    assert m["rows"]["synthesizer_pretrain"]["runs"][0]["device"] == "NVIDIA H100"
    assert m["rows"]["vanilla_pretrain"]["runs"][0]["device"] == "NVIDIA H200"
    assert (tmp_path / "m" / "seed1" / "london.dev.predictions").read_text() == "London\n"  # the kept run's files


@pytest.mark.parametrize("second, expect", [("course", "seed 0 is also in"), ("laptop", "different profiles")])
def test_merge_refuses_overlapping_seeds_and_mixed_profiles(tmp_path, second, expect):
    a = _fake_results(tmp_path / "a", "course", [0])
    b = _fake_results(tmp_path / "b", second, [0] if second == "course" else [1], bump=3)
    res = cli("merge", a, b, "--out", tmp_path / "m")
    assert_one_line_error(*res, "", expect)
    assert not (tmp_path / "m").exists()


def test_merge_is_no_longer_partial_once_every_row_has_every_seed(tmp_path):
    a = _fake_results(tmp_path / "a", "course", [0], partial=True)  # stopped before the other rows
    b = _fake_results(tmp_path / "b", "course", [0], row="synthesizer_pretrain")
    rc, out, err = cli("merge", a, b, "--out", tmp_path / "m")
    assert rc == 0, err
    assert json.loads((tmp_path / "m" / "results.json").read_text())["partial"] is True
    c = _fake_results(tmp_path / "c", "course", [0], row="vanilla_nopretrain")
    rc, out, err = cli("merge", a, b, c, "--out", tmp_path / "m2")
    assert rc == 0, err
    assert "partial" not in json.loads((tmp_path / "m2" / "results.json").read_text())
    assert "Partial" not in out


def test_merge_keep_first_records_disagreeing_runs(tmp_path):
    a = _fake_results(tmp_path / "a", "course", [0])
    b = _fake_results(tmp_path / "b", "course", [0], bump=3, row="synthesizer_pretrain")
    b_res = json.loads(b.read_text())
    b_res["rows"]["vanilla_pretrain"] = {"runs": [{"seed": 0, "correct": 101, "total": 500, "accuracy": 20.2,
                                                   "seconds": {}}]}
    b.write_text(json.dumps(b_res))
    rc, out, err = cli("merge", a, b, "--out", tmp_path / "m", "--keep_first")
    assert rc == 0, err
    m = json.loads((tmp_path / "m" / "results.json").read_text())
    assert [r["correct"] for r in m["rows"]["vanilla_pretrain"]["runs"]] == [100]  # the first file's
    assert m["rows"]["synthesizer_pretrain"]["runs"][0]["correct"] == 103
    assert m["disagreements"] == [{"row": "vanilla_pretrain", "seed": 0, "kept": {"file": str(a), "correct": 100},
                                   "dropped": {"file": str(b), "correct": 101}}]
    assert "100 kept, 101 in another run" in (tmp_path / "m" / "table.md").read_text()
    res = cli("merge", a, b, "--out", tmp_path / "m2")  # without the flag: refused
    assert_one_line_error(*res, "", "--keep_first")


def _recipe_results(folder, seeds, name="r", settings=None):
    runs = [{"seed": s, "heldout": {"accuracy": 50.0 + s}, "dev": {"accuracy": 40.0 + 2 * s},
             "seconds": {"total": 600.0}, "parameters": 10} for s in seeds]
    res = {"recipe": name, "track": "B", "description": "d", "settings": settings or {"a": 1}, "seeds": seeds,
           "runs": runs, "heldout": {}, "dev": {}, "minutes": {}, "parameters": 10, "command": "c",
           "device": "cpu", "torch": "x", "commit": "abc"}
    folder.mkdir(parents=True)
    for s in seeds:
        (folder / f"seed{s}").mkdir()
        (folder / f"seed{s}" / "dev.predictions.tsv").write_text("question\tanswer\tprediction\trecitation\n")
    (folder / "results.json").write_text(json.dumps(res))
    return folder / "results.json"


def test_merge_joins_seeds_of_a_recipe_run_apart(tmp_path):
    a = _recipe_results(tmp_path / "a", [0])
    b = _recipe_results(tmp_path / "b", [1, 2])
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 0
    m = json.loads((tmp_path / "m" / "results.json").read_text())
    assert m["seeds"] == [0, 1, 2] and [r["seed"] for r in m["runs"]] == [0, 1, 2]
    assert m["heldout"]["mean"] == pytest.approx(51.0) and m["dev"]["std"] == pytest.approx(2.0)
    assert m["minutes"]["mean"] == pytest.approx(10.0) and len(m["command"]) == 2
    assert all((tmp_path / "m" / f"seed{s}" / "dev.predictions.tsv").is_file() for s in (0, 1, 2))


@pytest.mark.parametrize("kw, expect", [({"name": "other"}, "different recipes"),
                                        ({"settings": {"a": 2}}, "different settings")])
def test_merge_refuses_different_recipes(tmp_path, capsys, kw, expect):
    a = _recipe_results(tmp_path / "a", [0])
    b = _recipe_results(tmp_path / "b", [1], **kw)
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    assert expect in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_merge_of_a_recipe_keeps_the_first_of_a_disagreeing_seed_only_when_asked(tmp_path, capsys):
    a = _recipe_results(tmp_path / "a", [0])
    b = _recipe_results(tmp_path / "b", [0, 1])
    res = json.loads(b.read_text())
    res["runs"][0]["dev"] = {"accuracy": 41.0, "correct": 205}
    b.write_text(json.dumps(res))
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    assert "seed 0 is also in" in capsys.readouterr().err and not (tmp_path / "m").exists()
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m"), "--keep_first"]) == 0
    m = json.loads((tmp_path / "m" / "results.json").read_text())
    assert [r["dev"]["accuracy"] for r in m["runs"]] == [40.0, 42.0]  # seed 0 from the first file
    assert m["disagreements"] == [{"seed": 0, "kept": {"file": str(a), "dev": None, "heldout": None},
                                   "dropped": {"file": str(b), "dev": 205, "heldout": None}}]
    assert all(r["device"] == "cpu" for r in m["runs"])  # each run keeps where it ran


def test_merge_of_a_recipe_is_partial_until_a_stopped_runs_seeds_are_all_there(tmp_path):
    a = _recipe_results(tmp_path / "a", [0])
    res = json.loads(a.read_text())
    a.write_text(json.dumps({**res, "partial": True, "plan": {"seeds": [0, 1, 2]}}))
    b = _recipe_results(tmp_path / "b", [1])
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 0
    m = json.loads((tmp_path / "m" / "results.json").read_text())
    assert m["partial"] is True and "plan" not in m
    c = _recipe_results(tmp_path / "c", [2])
    assert main(["merge", str(a), str(b), str(c), "--out", str(tmp_path / "m2")]) == 0
    assert "partial" not in json.loads((tmp_path / "m2" / "results.json").read_text())
    # a merged record is not a run to go on with: its pieces' states are in their own folders
    assert main(["reproduce", "--recipe", "r", "--out", str(tmp_path / "m"), "--resume"]) == 2


def test_merge_refuses_a_study_with_a_recipe(tmp_path, capsys):
    a = _recipe_results(tmp_path / "a", [0])
    b = tmp_path / "b" / "results.json"
    b.parent.mkdir()
    b.write_text(json.dumps({"profile": "course", "rows": {}, "seeds": [0], "command": "c", "commit": "x"}))
    assert main(["merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    assert "a study's results and a recipe's" in capsys.readouterr().err
