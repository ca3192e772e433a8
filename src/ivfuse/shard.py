"""Split a sorted list of work items between N processes: shard I of N takes ``items[I::N]``.

``--shard I/N`` on ``ivfuse fuse`` and ``ivfuse fuse-video`` selects a shard; without it, the
``RANK`` and ``WORLD_SIZE`` variables that torchrun sets are used, so ``torchrun --nproc-per-node N
-m ivfuse.cli fuse ...`` splits a dataset without overlap or gaps. Without either, one process
does everything.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence, TypeVar

__all__ = ["parse_shard", "select_shard"]

T = TypeVar("T")


def parse_shard(value: str | None, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; None -> (RANK, WORLD_SIZE) from ``env`` if set, else (0, 1).

    >>> parse_shard("1/4"), parse_shard(None, {}), parse_shard(None, {"RANK": "2", "WORLD_SIZE": "3"})
    ((1, 4), (0, 1), (2, 3))

    Raises:
        ValueError: naming ``--shard`` (or the variables) for anything else.
    """
    env = os.environ if env is None else env
    if value is None:
        rank, world = env.get("RANK"), env.get("WORLD_SIZE")
        if rank is None or world is None:
            return 0, 1
        source, text = "RANK/WORLD_SIZE", f"{rank}/{world}"
    else:
        source, text = "--shard", str(value)
    parts = text.strip().split("/")
    try:
        i, n = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        i = n = None
    if i is None or n is None or n < 1 or not 0 <= i < n:
        raise ValueError(f"{source} must be I/N with 0 <= I < N (e.g. 0/4), got '{text}'")
    return i, n


def select_shard(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """The items of shard (I, N): ``items[I::N]`` (all of them for None or N = 1).

    The caller sorts ``items``; every item lands in exactly one of the N shards.
    """
    if shard is None:
        return list(items)
    i, n = shard
    return list(items[i::n])
