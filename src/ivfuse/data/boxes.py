"""Box geometry (rasterising, moving boxes with crops, flips and rotations) and label degradation.

Boxes are float32 arrays (N, 4) of ``x0, y0, x1, y1`` in pixels, ``x1``/``y1`` exclusive.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "DegradeBoxes",
    "boxes_to_mask",
    "crop_boxes",
    "empty_boxes",
    "flip_boxes",
    "jitter_boxes",
    "keeps_labels",
    "rot90_boxes",
]


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



# --------------------------------------------------------------------------------------------
# Label degradation (weak-label study)
# --------------------------------------------------------------------------------------------


def keeps_labels(name: str, keep: float, seed: int = 0) -> bool:
    """Whether pair ``name`` keeps its boxes when only a fraction ``keep`` of the images is labelled.

    A stable hash of (seed, name) mapped to [0, 1) is compared with ``keep``, so the choice does
    not depend on the crop, the step or the process.
    """
    if keep >= 1.0:
        return True
    if keep <= 0.0:
        return False
    return zlib.crc32(f"{seed}:{name}".encode()) / 2**32 < keep


def jitter_boxes(boxes: np.ndarray, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Jitter boxes: move the centre by up to ``jitter`` x the box size and rescale each side by up to 1 +- ``jitter``.

    Args:
        boxes: (N, 4) ``x0, y0, x1, y1`` pixels.
        jitter: relative amplitude, >= 0 (0 returns the boxes unchanged).
        rng: numpy random generator (four uniform draws per box).

    Returns:
        (N, 4) float32 boxes (not clipped; rasterisation clips them).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if jitter <= 0 or len(b) == 0:
        return b.astype(np.float32)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    u = rng.uniform(-1.0, 1.0, size=(len(b), 4))
    cx, cy = cx + jitter * w * u[:, 0], cy + jitter * h * u[:, 1]
    w, h = w * (1 + jitter * u[:, 2]), h * (1 + jitter * u[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


# Mixed into a sample's seed so that the degradation draws do not share a stream with the crop's.
_DEGRADE_STREAM = 0xB0E5


@dataclass
class DegradeBoxes:
    """Weaker box labels for the weak-label study: fewer labelled images, noisier boxes.

    A training-time transform of each sample's boxes (annotations or pseudo-ROIs alike), applied
    by :class:`ivfuse.data.PairedDataset` after the crop and flips, before batching:

    * ``keep < 1``: only that fraction of the images keeps its boxes, chosen by a stable hash of
      (``seed``, pair name) (:func:`keeps_labels`), so the same images are unlabelled at every step
      as in a partly annotated dataset; the others get no boxes and an empty ROI.
    * ``jitter > 0``: every kept box is moved and rescaled by up to that fraction of its size
      (:func:`jitter_boxes`), and the ROI is rasterised again from the moved boxes.

    The jitter draws come from (``seed``, the sample's augmentation seed), and that seed from
    (run seed, epoch, position) (:func:`ivfuse.data.sample_seed`), so a resumed run sees exactly
    the boxes an uninterrupted one does. Foreground masks are left as they are.

    Attributes:
        keep: fraction of the images that keep their boxes, in [0, 1] (1: all).
        jitter: relative box jitter, >= 0 (0: none).
        seed: chooses the images kept and seeds the jitter (with each sample's seed).
    """

    keep: float = 1.0
    jitter: float = 0.0
    seed: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` when ``keep`` is outside [0, 1] or ``jitter`` is negative."""
        if not 0.0 <= float(self.keep) <= 1.0 or float(self.jitter) < 0:
            raise ValueError(
                f"data.degrade: keep must lie in [0, 1] and jitter be >= 0, got {self.keep}, {self.jitter}"
            )

    @property
    def active(self) -> bool:
        """Whether the transform changes anything."""
        return float(self.keep) < 1.0 or float(self.jitter) > 0.0

    def __call__(self, boxes: np.ndarray, name: str, sample_seed: int) -> tuple[np.ndarray, bool]:
        """The degraded boxes of one sample.

        Args:
            boxes: (N, 4) float32 ``x0, y0, x1, y1`` in pixels.
            name: the pair's name (chooses whether the image keeps its boxes).
            sample_seed: the sample's augmentation seed (non-negative int).

        Returns:
            ((M, 4) float32 boxes, whether the image kept its labels); an image that does not keep
            them gets (0, 4) boxes.
        """
        if not keeps_labels(name, float(self.keep), int(self.seed)):
            return empty_boxes(), False
        if float(self.jitter) <= 0:
            return np.asarray(boxes, dtype=np.float32).reshape(-1, 4), True
        rng = np.random.default_rng([int(sample_seed), int(self.seed) & 0xFFFFFFFF, _DEGRADE_STREAM])
        return jitter_boxes(boxes, float(self.jitter), rng), True
