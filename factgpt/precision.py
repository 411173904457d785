"""Choosing the arithmetic: fp32 unless bf16 has been shown to train the same.

bf16 autocast of this model at the course learning rate has been seen to
diverge where fp32 trained normally, so `auto` means fp32 until a ≥500-step
comparison (bench/precision_check.py) shows bf16's loss curve inside fp32's
seed-to-seed spread on that kind of device; `--precision bf16` is there to
try it. On CPUs without native bf16 instructions (AVX-512 BF16 or AMX) bf16
would not pay anyway: PyTorch's bf16 matrix products there were measured
10-100x slower than fp32.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if precision != "auto":
        if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            import warnings

            warnings.warn("this CPU has no native bf16 instructions: bf16 will be much slower than fp32")
        return precision
    return "fp32"  # bf16 is not yet shown to match fp32 on any device (see the module docstring)


def autocast(precision: str, device: torch.device):
    """The context a forward pass runs in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from .errors import InputError

        raise InputError("--device", "cuda was asked for but no CUDA device is available")
    return torch.device(name)
