"""What a run records about itself: the commit it ran at and the device it ran on."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch


def git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        if sha.returncode == 0:
            return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


@dataclass(frozen=True)
class CpuKind:
    """Which processor this is, as far as its arithmetic goes: vendor, family and model numbers."""

    vendor: str
    family: int
    model: int


def cpu_kind() -> CpuKind | None:
    """This machine's CPU kind from /proc/cpuinfo (None where it cannot be read)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (x.strip() for x in line.partition(":"))
            if not key:
                break  # the first processor says it for all
            fields.setdefault(key, value)
        return CpuKind(fields["vendor_id"], int(fields["cpu family"]), int(fields["model"]))
    except (OSError, KeyError, ValueError):
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    family = number = None
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (x.strip() for x in line.partition(":"))
            if key == "model name":
                model = value
            elif key == "cpu family":
                family = value
            elif key == "model":
                number = value
            elif key == "flags":
                flags = [f for f in ("avx512_bf16", "amx_bf16") if f in value.split()]
                break  # the first processor says it for all
    except OSError:
        pass
    # Machines named alike differ: the family/model and the bf16 instructions tell them apart
    # (bf16 matrix products are ~10x faster than fp32 with them, far slower without).
    detail = ([f"family {family} model {number}"] if family else []) + flags
    named = f"{model} ({', '.join(detail)})" if detail else model
    return f"{named} CPU, {torch.get_num_threads()} threads"
