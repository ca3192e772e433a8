"""Synthetic images for the metric tests."""

from __future__ import annotations

import numpy as np
import pytest


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth gradient with a bright square and mild noise: uint8, (h, w)."""
    y, x = np.mgrid[0:h, 0:w]
    img = 40.0 + 120.0 * x / w + 40.0 * np.sin(y / 7.0)
    img[h // 4 : h // 2, w // 3 : w // 2] += 60.0
    img += rng.normal(0.0, 6.0, size=(h, w))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture
def triple(rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fused, ir, vis) gray uint8 images of shape (48, 64) that differ from each other."""
    h, w = 48, 64
    ir = _scene(rng, h, w)
    vis = np.clip(255 - _scene(rng, h, w).astype(int) // 2 - 30, 0, 255).astype(np.uint8)
    fused = np.clip((ir.astype(int) + vis.astype(int)) // 2 + rng.integers(-5, 6, size=(h, w)), 0, 255).astype(np.uint8)
    return fused, ir, vis


@pytest.fixture
def colour_triple(rng, triple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fused, ir, vis): colour fused and visible (H, W, 3) uint8, gray infrared (H, W)."""
    fused, ir, vis = triple
    tint = rng.integers(-20, 21, size=(1, 1, 3))
    vis_c = np.clip(vis[..., None].astype(int) + tint + rng.integers(-3, 4, size=vis.shape + (3,)), 0, 255)
    fused_c = np.clip(fused[..., None].astype(int) + tint + rng.integers(-3, 4, size=fused.shape + (3,)), 0, 255)
    return fused_c.astype(np.uint8), ir, vis_c.astype(np.uint8)
