"""Process-wide allocator settings for programs that score many images (glibc only).

Every metric call allocates tens to hundreds of MB of float arrays and frees them again. glibc
gives freed memory at the top of its heap back to the system once that block exceeds its trim
threshold, and serves large requests with fresh ``mmap`` regions; the next call then pays the
kernel to hand out (and zero) the same pages again, about 2 microseconds per 4 kB page, which
is a quarter of the CPU time of a full metric suite on a 640x480 triple (``docs/metrics.md``,
"Page faults"). :func:`keep_freed_memory` tells glibc to keep freed memory for reuse instead.

The networks' forward passes pay the same: a 640x480 pair on the CPU allocates tens of
image-sized activations, and keeping freed memory takes a fifth off its latency.

This changes the whole process, so the library never calls it on import: the ``ivfuse eval``,
``bench``, ``fuse`` and ``fuse-video`` commands, which own their process, do; a program of your own may.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(trim_threshold: int = 1 << 30, mmap_threshold: int = 32 << 20) -> bool:
    """Ask glibc to keep freed memory in the process instead of returning it to the system.

    Sets ``M_TRIM_THRESHOLD`` (free memory at the heap top that may stay unreturned) and
    ``M_MMAP_THRESHOLD`` (requests at least this large get their own ``mmap`` region, which is
    unmapped on free), as the ``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_``
    environment variables would at start-up. Peak memory is unchanged; memory freed after the
    peak stays with the process until it exits.

    Args:
        trim_threshold: bytes of free heap top glibc may keep (default 1 GiB).
        mmap_threshold: request size from which glibc maps memory separately (default 32 MiB,
            glibc's own upper limit for its adaptive threshold; a 4K float64 image is 66 MB and
            still gets its own region).

    Returns:
        True when both settings were applied (Linux with glibc); False elsewhere (macOS,
        Windows, musl), where nothing is changed.
    """
    if trim_threshold < 0 or mmap_threshold < 0:
        raise ValueError("thresholds must be non-negative byte counts")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    limit = 2**31 - 1  # mallopt takes an int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, min(mmap_threshold, limit)))
    return bool(mallopt(_M_TRIM_THRESHOLD, min(trim_threshold, limit))) and ok
