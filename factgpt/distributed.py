"""Data parallel training with torch.distributed, when launched by torchrun.

Every rank draws the same global batch from the same seeded generator and
trains on its own slice of the examples; DistributedDataParallel averages the
gradients. Each rank scales its summed loss by world_size / (global number of
targets), so that the averaged gradient is exactly the gradient of the mean
loss over the whole global batch, as in a single process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun describes; returns this rank's device."""
    if not launched_by_torchrun() or dist.is_initialized():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return device


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        # Every rank waits here first: rank 0 may still be writing the checkpoint, and a rank
        # that tears down gloo's connections while a peer still holds them was seen to abort
        # ("terminate called without an active exception") after a run that had succeeded.
        dist.barrier()
        dist.destroy_process_group()
