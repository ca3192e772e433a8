"""Argument checks shared by the functional metrics."""

from __future__ import annotations

import numpy as np

from ._memo import Memo, cached

__all__ = ["as_plane", "as_planes", "normalised_255", "normalize_255", "sum_of_products", "sum_of_squares"]


def as_plane(img, name: str = "image", min_size: int = 2) -> np.ndarray:
    """Return ``img`` as a 2-D float64 array or raise ``ValueError`` naming the shape it got.

    Args:
        img: array-like of shape (H, W), values in 0..255.
        name: argument name used in error messages.
        min_size: smallest allowed H and W.

    Returns:
        (H, W) float64 array (a view when ``img`` already is one).
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a single-channel (H, W) array, got shape {arr.shape}")
    if arr.shape[0] < min_size or arr.shape[1] < min_size:
        raise ValueError(f"{name}: expected at least {min_size}x{min_size} pixels, got shape {arr.shape}")
    return arr


def as_planes(*imgs_and_names: tuple, min_size: int = 2) -> list[np.ndarray]:
    """Check several (H, W) arrays and that their shapes agree.

    Args:
        imgs_and_names: ``(array, name)`` pairs.
        min_size: smallest allowed H and W.

    Returns:
        The arrays as float64, in order.
    """
    arrs = [as_plane(img, name, min_size) for img, name in imgs_and_names]
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        desc = ", ".join(f"{name} {a.shape}" for a, (_, name) in zip(arrs, imgs_and_names))
        raise ValueError(f"shape mismatch: {desc}")
    return arrs


def sum_of_squares(x: np.ndarray) -> float:
    """``sum(x * x)`` in one pass (BLAS dot product), float64."""
    flat = x.ravel()
    return float(np.dot(flat, flat))


def sum_of_products(x: np.ndarray, y: np.ndarray) -> float:
    """``sum(x * y)`` in one pass (BLAS dot product), float64."""
    return float(np.dot(x.ravel(), y.ravel()))


def normalize_255(img: np.ndarray) -> np.ndarray:
    """Min-max normalise to 0..255 and round half away from zero (Z. Liu's ``normalize1``).

    An all-zero image stays zero; any other constant image also maps to zeros (the reference
    would divide by zero).
    """
    lo, hi = img.min(), img.max()
    if hi == lo:
        return np.zeros_like(img)
    return np.floor((img - lo) / (hi - lo) * 255.0 + 0.5)


def normalised_255(img: np.ndarray, memo: Memo | None = None) -> np.ndarray:
    """:func:`normalize_255` of ``img``, computed once per image through ``memo`` (MI, Qcb and Qcv share it)."""
    return cached(memo, ("normalised-255",), img, normalize_255)
