"""Multi-process training with PyTorch's own tools: ``torchrun``, DDP, NCCL or gloo.

The loop runs unchanged in one process or many. Under ``torchrun`` (environment variables
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) :func:`init_distributed`
joins the process group (NCCL on CUDA, gloo on CPU) and picks ``cuda:LOCAL_RANK``; a process
group the caller already initialised (tests, notebooks) is used as it is.

Each process reads its own shard of every epoch (:class:`ivfuse.data.PairSampler`), gradients are
averaged by :class:`torch.nn.parallel.DistributedDataParallel`, only rank 0 writes checkpoints,
logs and the final weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_reduce_mean", "barrier", "init_distributed", "shutdown_distributed"]


@dataclass
class DistContext:
    """Where this process stands.

    Attributes:
        rank, world_size, local_rank: the process group (0, 1, 0 without one).
        device: this process's device.
        owns_group: :func:`init_distributed` created the group (and :func:`shutdown_distributed`
            destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(device: str, local_rank: int, distributed: bool) -> torch.device:
    from ..infer import select_device

    dev = select_device(device)
    if dev.type == "cuda" and distributed and dev.index is None:
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def init_distributed(device: str = "auto") -> DistContext:
    """Join (or reuse) a process group when running under ``torchrun``; otherwise a single process."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistContext(rank, world, local, _pick_device(device, local, world > 1), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=_pick_device(device, 0, False))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local, True)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local, dev, owns_group=True)


def shutdown_distributed(ctx: DistContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average a dict of floats over the processes (same keys on every rank)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device(ctx))
    dist.all_reduce(t)
    t /= ctx.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def _comm_device(ctx: DistContext) -> torch.device:
    return ctx.device if dist.get_backend() == "nccl" else torch.device("cpu")


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
