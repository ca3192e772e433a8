"""Shared fixtures: synthetic images and the optional ../shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The read-only ../shared folder; tests using it skip when it is absent (a user's fresh clone)."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not available")
    return SHARED


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
