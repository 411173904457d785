"""The arithmetic choices: tf32 is CUDA-only and scoped; auto stays fp32 until measured otherwise."""

from pathlib import Path

import pytest
import torch

from factgpt.errors import InputError
from factgpt.precision import autocast, matmul_precision, resolve

ROOT = Path(__file__).resolve().parent.parent


def test_tf32_is_refused_on_a_cpu():
    with pytest.raises(InputError, match="tf32 is a CUDA precision"):
        resolve("tf32", torch.device("cpu"))
    assert resolve("tf32", torch.device("cuda")) == "tf32"  # resolving needs no GPU


def test_auto_is_fp32_everywhere():
    assert resolve("auto", torch.device("cpu")) == resolve("auto", torch.device("cuda")) == "fp32"


@pytest.mark.parametrize("enter", [matmul_precision, autocast])
def test_tf32_products_only_inside_the_context(enter):
    before = torch.get_float32_matmul_precision()
    with enter("tf32", torch.device("cuda")):  # only flips a flag: runs without a GPU
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == before
    with enter("tf32", torch.device("cpu")), enter("fp32", torch.device("cuda")):
        assert torch.get_float32_matmul_precision() == before


def test_tf32_setting_is_restored_after_an_error():
    before = torch.get_float32_matmul_precision()
    with pytest.raises(RuntimeError), matmul_precision("tf32", torch.device("cuda")):
        raise RuntimeError("boom")
    assert torch.get_float32_matmul_precision() == before


def test_auto_trains_in_bf16_only_on_a_cpu_kind_where_it_was_shown(monkeypatch):
    """bf16 for training on a CPU kind that passed the learning comparison and has the instructions;
    fp32 on any other kind (a family-26 EPYC with avx512_bf16 was never checked), never for decoding
    (committed predictions are compared exactly), never without the instructions, and never against
    an explicit fp32."""
    import factgpt.precision as P
    from factgpt.runinfo import CpuKind

    cpu = torch.device("cpu")
    zen4, xeon = CpuKind("AuthenticAMD", 25, 17), CpuKind("GenuineIntel", 6, 167)
    unchecked = CpuKind("AuthenticAMD", 26, 2)
    assert zen4 in P.BF16_TRAINING_CPUS and xeon in P.BF16_TRAINING_CPUS
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(P, "cpu_kind", lambda: unchecked)
    assert P.resolve("auto", cpu, training=True) == "fp32"
    monkeypatch.setattr(P, "cpu_kind", lambda: None)
    assert P.resolve("auto", cpu, training=True) == "fp32"
    for kind in (zen4, xeon):
        monkeypatch.setattr(P, "cpu_kind", lambda kind=kind: kind)
        assert P.resolve("auto", cpu, training=True) == "bf16"
    assert P.resolve("auto", cpu) == "fp32"
    assert P.resolve("fp32", cpu, training=True) == "fp32"
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: False)
    assert P.resolve("auto", cpu, training=True) == "fp32"


@pytest.mark.golden
def test_bf16_cpu_kinds_are_those_whose_committed_check_passed():
    """BF16_TRAINING_CPUS holds exactly the CPU kinds whose committed learning comparison
    (results/bench/learning-equivalence-bf16-cpu-*.json) had bf16 inside three or more fp32 seeds'
    spread in every window: the switch follows a measurement, not a belief."""
    import json
    import re

    import factgpt.precision as P
    from factgpt.runinfo import CpuKind

    vendors = {"AMD": "AuthenticAMD", "Intel": "GenuineIntel"}
    passed = set()
    files = sorted((ROOT / "results" / "bench").glob("learning-equivalence-bf16-cpu-*.json"))
    assert files
    for f in files:
        d = json.loads(f.read_text())
        m = re.search(r"family (\d+) model (\d+)", d["device"])
        assert m, f"{f.name}: no CPU family/model in {d['device']!r}"
        vendor = next((v for k, v in vendors.items() if d["device"].startswith(k)), None)
        assert vendor, f"{f.name}: unknown CPU vendor in {d['device']!r}"
        if d["all_windows_inside"] and len(d["seeds"]) >= 3:
            passed.add(CpuKind(vendor, int(m[1]), int(m[2])))
    assert passed == set(P.BF16_TRAINING_CPUS)
