"""The model shipped inside the package is the laptop study's seed-0 vanilla model, and behaves like it.

Evaluating the dev set with it must give exactly the seed-0 predictions and
accuracy that `factgpt reproduce` committed under results/laptop/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factgpt.checkpoint import load_tensors
from factgpt.cli import main
from factgpt.fileio import shipped_model

RESULTS = Path(__file__).resolve().parent.parent / "results" / "laptop"


@pytest.fixture(scope="module")
def shipped() -> Path:
    p = shipped_model()
    assert p is not None, "the package ships no model (factgpt/weights/vanilla.finetune.safetensors)"
    return p


def test_shipped_model_is_small_and_described(shipped):
    assert shipped.stat().st_size <= 16 * 2**20
    tensors, meta = load_tensors(shipped)
    assert meta["variant"] == "vanilla"
    assert meta["config"]["n_layer"] == 4 and meta["config"]["n_embd"] == 256 and meta["config"]["n_head"] == 8
    assert all(t.dtype.is_floating_point for t in tensors.values())
    results = json.loads((RESULTS / "results.json").read_text(encoding="utf-8"))
    origin = meta["shipped_from"]
    assert (origin["profile"], origin["seed"], origin["row"]) == ("laptop", 0, "vanilla_pretrain")
    assert origin["commit"] == results["commit"]


def test_shipped_model_reproduces_the_committed_seed0_dev_accuracy(shipped, tmp_path, capsys):
    results = json.loads((RESULTS / "results.json").read_text(encoding="utf-8"))
    seed0 = next(r for r in results["rows"]["vanilla_pretrain"]["runs"] if r["seed"] == 0)
    out = tmp_path / "dev.predictions"
    assert main(["evaluate", "vanilla", "--outputs_path", str(out)]) == 0
    committed = (RESULTS / "seed0" / "vanilla_pretrain.dev.predictions").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed
    assert f"Correct: {seed0['correct']} out of {seed0['total']}:" in capsys.readouterr().out


def test_ask_uses_the_shipped_model(shipped, capsys):
    assert main(["ask", "Where was Ralf Wadephul born?"]) == 0
    answer, info = capsys.readouterr().out.rstrip("\n").split("\t")
    assert answer and "probability" in info
