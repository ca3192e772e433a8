"""Regions of interest for ROI-SSIM: pixel boxes or a mask, turned into a per-pixel weight map."""

from __future__ import annotations

import numpy as np

__all__ = ["roi_mask"]


def _to_numpy(roi) -> np.ndarray:
    if hasattr(roi, "detach") and hasattr(roi, "cpu"):  # torch.Tensor without importing torch
        roi = roi.detach().cpu().numpy()
    return np.asarray(roi)


def roi_mask(roi, shape: tuple[int, int]) -> np.ndarray:
    """Turn boxes or a mask into float64 per-pixel weights of the given image shape.

    Args:
        roi: either a mask of exactly ``shape`` (H, W) (bool, or float weights >= 0, e.g. a soft
            saliency map; any 2-D array of that shape is read as a mask), or boxes as an (N, 4)
            array-like of pixel coordinates ``(x0, y0, x1, y1)``: a box covers the pixels with
            ``x0 <= x < x1`` and ``y0 <= y < y1`` (the box ``(0, 0, W, H)`` is the whole image;
            fractional coordinates are widened to whole pixels with ``floor(x0)`` and ``ceil(x1)``;
            boxes are clipped to the image and their union is taken). ``N = 0`` is an empty ROI.
        shape: (H, W) of the images.

    Returns:
        (H, W) float64 weights (0/1 for boxes and boolean masks).

    Raises:
        ValueError: a mask with negative or non-finite weights, a box with ``x1 < x0`` or
            ``y1 < y0``, or an array that is neither an (H, W) mask nor (N, 4) boxes.
    """
    arr = _to_numpy(roi)
    h, w = shape
    if arr.ndim == 2 and arr.shape == (h, w):
        weights = arr.astype(np.float64)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("roi mask: weights must be finite and >= 0")
        return weights
    if arr.size == 0:
        return np.zeros((h, w), dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"roi: expected boxes of shape (N, 4) or a mask of shape {(h, w)}, got shape {arr.shape}")
    boxes = arr.astype(np.float64)
    if not np.all(np.isfinite(boxes)):
        raise ValueError("roi boxes: coordinates must be finite")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError("roi boxes: expected (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
    mask = np.zeros((h, w), dtype=bool)
    x0 = np.clip(np.floor(boxes[:, 0]), 0, w).astype(int)
    y0 = np.clip(np.floor(boxes[:, 1]), 0, h).astype(int)
    x1 = np.clip(np.ceil(boxes[:, 2]), 0, w).astype(int)
    y1 = np.clip(np.ceil(boxes[:, 3]), 0, h).astype(int)
    for bx0, by0, bx1, by1 in zip(x0, y0, x1, y1):  # one slice per box, not per pixel
        mask[by0:by1, bx0:bx1] = True
    return mask.astype(np.float64)
