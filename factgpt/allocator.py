"""Let a CPU training process keep the memory it frees.

One training step of the course model allocates and frees dozens of buffers
of about 30 MB (the attention weights of every layer, their dropout masks and
gradients). glibc serves allocations that large with mmap and hands them back
to the kernel when they are freed, so every step touches fresh pages again:
tens of thousands of page faults a step. Raising the mmap and trim thresholds
keeps those buffers in the heap, where the next step reuses them
(`python bench/ab_step.py --what allocator` counts the faults and times the
steps both ways). The cost: the process keeps its peak memory (a few hundred
MB for the course model) until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done = False


def keep_freed_memory() -> bool:
    """Apply the setting once per process; True when it is in effect (Linux with glibc only)."""
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
