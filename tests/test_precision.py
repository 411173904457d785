"""The arithmetic choices: tf32 is CUDA-only and scoped; auto stays fp32 until measured otherwise."""

import pytest
import torch

from factgpt.errors import InputError
from factgpt.precision import autocast, matmul_precision, resolve


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


def test_auto_trains_in_bf16_on_a_bf16_cpu_only_once_shown(monkeypatch):
    """CPU_BF16_TRAINING off: fp32 everywhere; on: bf16 for training on a CPU with the instructions,
    never for decoding (committed predictions are compared exactly) and never without them."""
    import factgpt.precision as P

    cpu = torch.device("cpu")
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(P, "CPU_BF16_TRAINING", False)
    assert P.resolve("auto", cpu, training=True) == "fp32"
    monkeypatch.setattr(P, "CPU_BF16_TRAINING", True)
    assert P.resolve("auto", cpu, training=True) == "bf16"
    assert P.resolve("auto", cpu) == "fp32"
    assert P.resolve("fp32", cpu, training=True) == "fp32"
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: False)
    assert P.resolve("auto", cpu, training=True) == "fp32"
