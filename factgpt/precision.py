"""Choosing the arithmetic: fp32 unless a cheaper one has been shown to train the same.

bf16 autocast of this model at the course learning rate has been seen to
diverge where fp32 trained normally, so `auto` means fp32 until a ≥500-step
comparison (bench/precision_check.py) shows bf16's loss curve inside fp32's
seed-to-seed spread on that kind of device; `--precision bf16` is there to
try it. On CPUs without native bf16 instructions (AVX-512 BF16 or AMX) bf16
would not pay anyway: PyTorch's bf16 matrix products there were measured
10-100x slower than fp32; with them, 8-9x faster (a 7,700×256 by 256×1,024
product: 336 against 39 GFLOP/s on one core of an AMD EPYC with avx512_bf16).
BF16_TRAINING_CPUS lists the CPU kinds (vendor, family, model) where bf16
passed bench/learning_equivalence.py --compare bf16, a screen of a reduced
model for 184 steps by its loss alone: a 2-core AMD EPYC Zen 4 (family 25
model 17, avx512_bf16) and a 2-core Xeon with AMX (family 6 model 167), 9 of 9
windows against three fp32 seeds each (docs/speed.md). The screen's runs
answer nothing, so it cannot say whether bf16 stores the facts; `auto` trains
a profile in bf16 only where, on top of it, that profile's own pretraining
passed bench/precision_profile_check.py on that CPU kind (three seeds, at
least 500 steps, loss and held-out accuracy inside fp32's spread) and bf16
pretrained it in at most 90% of fp32's minutes there: BF16_PROFILE_CHECKS,
empty until such a check passes. On a Zen 4 the word-key profile passed on
learning but took 0.98 of fp32's minutes in bf16 (its products are small),
so it is not switched on. Elsewhere `auto` is fp32 and
`--precision bf16` asks for bf16.
Decoding stays fp32 under `auto` either way: answers are compared exactly
with committed predictions.

tf32 (CUDA only) keeps every tensor in fp32 but lets the GPU's tensor cores
do the matrix products with a 10-bit mantissa (fp32 accumulation): without it
an H100/H200 multiplies fp32 matrices at a tenth of its tensor-core rate. It
is held to the same test as bf16 before `auto` may pick it.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

import torch

from .choices import PRECISIONS  # re-exported: precision.PRECISIONS
from .errors import InputError
from .runinfo import CpuKind, cpu_kind

# CPU kinds where bench/learning_equivalence.py --compare bf16 showed bf16 training inside fp32's
# three-seed spread (results/bench/learning-equivalence-bf16-cpu-*.json; a test keeps this set and
# those files in step).
BF16_TRAINING_CPUS: frozenset[CpuKind] = frozenset({
    CpuKind("AuthenticAMD", 25, 17),  # AMD EPYC Zen 4, avx512_bf16
    CpuKind("GenuineIntel", 6, 167),  # Intel Xeon with AMX
})


# Profiles whose own pretraining passed bench/precision_profile_check.py in bf16 and took less time
# in it, and the CPU kinds where it did (results/bench/precision-profile-<profile>-cpu-*.json with
# auto_bf16 true; a test keeps the two in step).
BF16_PROFILE_CHECKS: dict[str, frozenset[CpuKind]] = {}


def bf16_shown_to_train_here(profile: str | None) -> bool:
    """bf16 has passed the screen on this kind of CPU and the profile's own check there, and the CPU
    has the instructions."""
    kind = cpu_kind()
    return (profile is not None and cpu_has_native_bf16() and kind in BF16_TRAINING_CPUS
            and kind in BF16_PROFILE_CHECKS.get(profile, frozenset()))


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve(precision: str, device: torch.device, training: bool = False, profile: str | None = None) -> str:
    """The precision to run in; `auto` for training picks bf16 only for a profile whose own bf16 check
    passed on this CPU kind (BF16_PROFILE_CHECKS), fp32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if precision == "tf32" and device.type != "cuda":
        raise InputError("--precision", "tf32 is a CUDA precision (tensor-core fp32 products); use fp32 on a CPU")
    if precision != "auto":
        if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
            warnings.warn("this CPU has no native bf16 instructions: bf16 will be much slower than fp32")
        return precision
    if training and device.type == "cpu" and bf16_shown_to_train_here(profile):
        return "bf16"
    return "fp32"  # elsewhere bf16 is not shown to match fp32 (see the module docstring)


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device):
    """fp32 matrix products on tensor cores (TF32) inside, for tf32 on CUDA; the setting is restored after."""
    if precision != "tf32" or device.type != "cuda":
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def autocast(precision: str, device: torch.device):
    """The context a forward pass runs in: bf16 autocast, TF32 products, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return matmul_precision(precision, device)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str, mps: bool = False) -> torch.device:
    """auto: CUDA where torch sees one, else (for decoding, mps=True) Apple's MPS, else the CPU.
    Training stays off MPS: no run of this project has been checked there."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps and _mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "cuda was asked for but no CUDA device is available")
    if name == "mps" and not _mps_available():
        raise InputError("--device", "mps was asked for but torch reports no Apple MPS device here")
    return torch.device(name)
