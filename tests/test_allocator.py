"""keep_freed_memory: freed memory is reused instead of being faulted in again (glibc only)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from ivfuse._allocator import keep_freed_memory

glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Allocates and frees ~100 MB in 2.5 MB blocks, four times: the metrics' pattern (many
# image-sized temporaries alive at once). Prints the minor page faults of rounds 2 to 4.
_WORKLOAD = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from ivfuse._allocator import keep_freed_memory
    applied = keep_freed_memory() if sys.argv[1] == "keep" else None
    def round_():
        blocks = [np.ones(320_000) for _ in range(40)]
        del blocks
    round_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        round_()
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _WORKLOAD, mode], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not glibc, reason="mallopt settings are glibc's")
def test_keep_freed_memory_removes_refaulting():
    applied, kept = _faults("keep")
    _, default = _faults("default")
    assert applied == "True"
    # 3 rounds x ~100 MB: glibc's default trims the heap after each round (~25,000 faults per
    # round of 4 kB pages); with the memory kept, the rounds after the first reuse it.
    assert default > 30_000
    assert kept < default / 20


def test_keep_freed_memory_rejects_negative_thresholds():
    with pytest.raises(ValueError, match="non-negative"):
        keep_freed_memory(trim_threshold=-1)
