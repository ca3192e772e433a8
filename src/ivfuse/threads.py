"""CPU thread count for the commands that compute (fusing, scoring, training, benchmarks).

PyTorch starts as many intra-op threads as the process may use cores. On a machine whose cores
are already busy that is the worst choice: the threads wait for each other at every operator, and
a 640x480 ``fusionnet_cpu`` forward on two cores took several times longer with 2 threads than
with 1 while another process kept one core busy (``python benchmarks/threads.py``; figures in
``docs/benchmark/README.md``). When idle, 2 threads are faster. ``auto`` therefore takes the
cores that are free right now: the usable cores minus the cores other processes kept busy over
the last 0.1 s (the 1-minute load average where ``/proc/stat`` is missing), at least one.
"""

from __future__ import annotations

import os
import time

__all__ = ["auto_threads", "busy_cores", "parse_threads", "set_threads", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def busy_cores(interval: float = 0.1) -> float | None:
    """Cores in use by other processes right now, from two readings of ``/proc/stat``.

    Returns None where the OS has no ``/proc/stat`` (then the load average is used).
    """
    def read() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields[:8])

    try:
        idle0, total0 = read()
        time.sleep(interval)
        idle1, total1 = read()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1.0 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Threads for a compute command: the cores not busy now, at least 1.

    Args:
        cores: usable cores (default: :func:`usable_cores`).
        load: cores kept busy by other processes (default: measured over 0.1 s by
            :func:`busy_cores`, else the 1-minute load average, else 0).

    >>> auto_threads(cores=2, load=0.1), auto_threads(cores=2, load=1.2), auto_threads(cores=8, load=9.0)
    (2, 1, 1)
    """
    cores = usable_cores() if cores is None else cores
    if load is None:
        load = busy_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def parse_threads(value: str | int | None) -> int:
    """``auto``/None -> :func:`auto_threads`; a positive number stays as it is.

    Raises:
        ValueError: naming ``--threads``, for anything else.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return auto_threads()
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--threads must be 'auto' or a number of at least 1, got '{value}'") from None
    if n < 1:
        raise ValueError(f"--threads must be 'auto' or a number of at least 1, got {n}")
    return n


def set_threads(n: int) -> None:
    """Use ``n`` intra-op threads in PyTorch (if installed) and in the BLAS behind NumPy (if
    ``threadpoolctl`` is installed)."""
    try:
        import torch
    except ModuleNotFoundError:  # the metrics work without torch
        pass
    else:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ModuleNotFoundError:
        return
    threadpool_limits(n)
