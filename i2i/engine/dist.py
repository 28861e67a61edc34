"""torchrun environment -> process group, and rank helpers.

Under ``torchrun`` the variables RANK / WORLD_SIZE / LOCAL_RANK are set; outside it
everything here degrades to a single process of rank 0.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device_type: str) -> tuple[int, int, int]:
    """Join the process group if launched by torchrun; return ``(rank, local_rank, world)``.

    NCCL on CUDA, gloo otherwise.
    """
    world = env_world_size()
    if world <= 1:
        return 0, 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """True on the process that writes files (rank 0)."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks (identity in a single process)."""
    if not is_distributed():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()
