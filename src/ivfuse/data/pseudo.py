"""Pseudo-labels: salient warm regions of the infrared image, for pairs without annotations."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .boxes import empty_boxes
from .config import PseudoLabelConfig

__all__ = ["pseudo_labels"]


def pseudo_labels(ir: np.ndarray | torch.Tensor, cfg: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Salient warm regions of an infrared image, as a mask and boxes.

    1. Smooth with a Gaussian of ``cfg.sigma`` pixels (truncated at 3 sigma, reflected borders).
    2. Threshold at ``max(mean + cfg.k * std, median + cfg.min_contrast)`` of the smoothed image:
       warm relative to the scene, and clearly warmer than the typical pixel (a flat or noisy
       image yields nothing).
    3. Open, then close, with a ``(2 * cfg.dilate + 1)`` square (removes specks, fills gaps;
       borders replicated).
    4. Keep connected components (8-connected) of at least ``cfg.min_area * H * W`` pixels, at
       most ``cfg.max_regions`` of them, largest first.
    5. Mask = kept components; boxes = their bounding boxes grown by ``cfg.box_margin`` pixels.

    Args:
        ir: (H, W) infrared in [0, 1] (numpy or tensor; (1, 1, H, W) accepted).
        cfg: a :class:`PseudoLabelConfig` (defaults when None).

    Returns:
        (mask bool (H, W), boxes float32 (N, 4) ``x0, y0, x1, y1``).
    """
    from scipy import ndimage

    if cfg is None:
        cfg = PseudoLabelConfig()
    a = ir.detach().cpu().numpy() if isinstance(ir, torch.Tensor) else np.asarray(ir)
    a = np.squeeze(a).astype(np.float32)
    if a.ndim != 2:
        raise ValueError(f"pseudo_labels: expected an (H, W) image, got shape {np.shape(ir)}")
    h, w = a.shape
    s = ndimage.gaussian_filter(a, cfg.sigma, mode="reflect", truncate=3.0) if cfg.sigma > 0 else a
    thr = max(float(s.mean()) + cfg.k * float(s.std()), float(np.median(s)) + cfg.min_contrast)
    warm = (s > thr).astype(np.uint8)
    d = int(cfg.dilate)
    if d > 0 and warm.any():
        # opening then closing with a (2d+1) square, as separable min/max filters (borders replicated)
        k = 2 * d + 1
        warm = ndimage.maximum_filter(ndimage.minimum_filter(warm, k, mode="nearest"), k, mode="nearest")
        warm = ndimage.minimum_filter(ndimage.maximum_filter(warm, k, mode="nearest"), k, mode="nearest")
    lab, n = ndimage.label(warm, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros((h, w), dtype=bool), empty_boxes()
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    keep = [int(i) + 1 for i in order if sizes[i] >= cfg.min_area * h * w][: int(cfg.max_regions)]
    if not keep:
        return np.zeros((h, w), dtype=bool), empty_boxes()
    mask = np.isin(lab, keep)
    slices = ndimage.find_objects(lab)
    m = float(cfg.box_margin)
    boxes = []
    for i in sorted(keep):
        sy, sx = slices[i - 1]
        boxes.append((max(sx.start - m, 0.0), max(sy.start - m, 0.0), min(sx.stop + m, w), min(sy.stop + m, h)))
    return mask, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)

