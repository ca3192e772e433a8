"""One latency timer: warm-up calls, then timed repeats, wall and process CPU seconds per call.

Used by the speed table of ``ivfuse bench``, :func:`ivfuse.models.profile.measure_latency` and the
scripts under ``benchmarks/``, so that every latency the project reports is measured the same way.

>>> t = measure_latency(lambda: sum(range(1000)), warmup=1, repeat=3)
>>> len(t.wall_s), t.median_s >= 0.0
(3, True)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Latency", "measure_latency"]


@dataclass(frozen=True)
class Latency:
    """Seconds per timed call (warm-up calls excluded).

    Attributes:
        wall_s: wall-clock seconds of each timed call (``time.perf_counter``).
        cpu_s: CPU seconds of this process during each call, all threads summed
            (``time.process_time``; less sensitive to other work on the machine).
    """

    wall_s: tuple[float, ...]
    cpu_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        """Median wall seconds per call."""
        return statistics.median(self.wall_s)

    @property
    def cpu_median_s(self) -> float:
        """Median CPU seconds per call."""
        return statistics.median(self.cpu_s)

    @property
    def cpu_min_s(self) -> float:
        """Fewest CPU seconds of one call."""
        return min(self.cpu_s)


def measure_latency(call: Callable[[], object], warmup: int = 2, repeat: int = 5) -> Latency:
    """Run ``call()`` ``warmup`` times untimed, then ``repeat`` times timed.

    Args:
        call: the work to time, e.g. ``lambda: run_model(model, ir, vis)``.
        warmup: calls before timing starts (allocations, caches, lazy initialisation).
        repeat: timed calls (at least 1).

    Raises:
        ValueError: ``repeat`` < 1 or ``warmup`` < 0.
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f"measure_latency: need repeat >= 1 and warmup >= 0, got repeat={repeat}, warmup={warmup}")
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return Latency(tuple(wall), tuple(cpu))
