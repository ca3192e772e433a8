"""Box geometry: rasterising boxes to masks, and moving boxes with crops, flips and rotations.

Boxes are float32 arrays (N, 4) of ``x0, y0, x1, y1`` in pixels, ``x1``/``y1`` exclusive.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["boxes_to_mask", "crop_boxes", "empty_boxes", "flip_boxes", "rot90_boxes"]


def empty_boxes() -> np.ndarray:
    """No boxes: a float32 (0, 4) array."""
    return np.zeros((0, 4), dtype=np.float32)


def boxes_to_mask(boxes: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """Rasterise boxes: a pixel is inside when its centre lies in ``[x0, x1) x [y0, y1)``.

    A box thinner than a pixel still marks the pixel it falls in.

    Returns:
        bool (H, W) array.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    m = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in b:
        if not (x1 > x0 and y1 > y0):
            continue
        c0, c1 = math.floor(x0 + 0.5), math.floor(x1 + 0.5)
        r0, r1 = math.floor(y0 + 0.5), math.floor(y1 + 0.5)
        c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, width), min(r1, height)
        if c1 > c0 and r1 > r0:
            m[r0:r1, c0:c1] = True
    return m


def crop_boxes(boxes: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    """Move boxes into a crop with top-left ``(x, y)`` and size ``width x height``; clip; drop empty ones."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) - np.array([x, y, x, y], dtype=np.float32)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return b[keep]


def flip_boxes(boxes: np.ndarray, width: int, height: int, horizontal: bool) -> np.ndarray:
    """Mirror boxes left-right (``horizontal``) or top-bottom in an image of that size."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    if horizontal:
        b[:, [0, 2]] = width - b[:, [2, 0]]
    else:
        b[:, [1, 3]] = height - b[:, [3, 1]]
    return b


def rot90_boxes(boxes: np.ndarray, width: int, height: int, k: int) -> np.ndarray:
    """Boxes after ``torch.rot90(img, k, dims=(-2, -1))`` (k quarter turns counter-clockwise) of a
    ``width x height`` image."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    w, h = width, height
    for _ in range(k % 4):
        # A pixel (row r, col c) moves to (w - 1 - c, r): x' = y, y' = w - x.
        b = np.stack([b[:, 1], w - b[:, 2], b[:, 3], w - b[:, 0]], axis=1)
        w, h = h, w
    return b.astype(np.float32).reshape(-1, 4)

