"""Fixtures of the engine's tests: synthetic pairs, one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import write_pairs


@pytest.fixture(scope="session")
def pair_dir(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("synth") / "pairs")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread is faster and immune to a busy machine; restored afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
