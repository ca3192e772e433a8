"""Statistical metrics: SD (standard deviation), CC (correlation coefficient), SCD.

All functions take single-channel float64 arrays in 0..255 and are identical in the three
conventions (only the input handling before them differs).
"""

from __future__ import annotations

import numpy as np

from ._common import as_plane, as_planes, sum_of_products, sum_of_squares

__all__ = ["correlation", "correlation_coefficient", "scd", "standard_deviation"]


def standard_deviation(img) -> float:
    """SD: population standard deviation ``sqrt(sum((F - mean)^2) / (M N))`` (VIFB calls it Variance).

    Args:
        img: (H, W) float64 in 0..255.

    Returns:
        SD in gray levels. Higher is better (more contrast).
    """
    f = as_plane(img, "img", 1)
    return float(np.sqrt(sum_of_squares(f - f.mean()) / f.size))


def correlation(x, y) -> float:
    """Pearson correlation of two images (MATLAB ``corr2``); NaN if either is constant.

    Args:
        x: (H, W) float64.
        y: (H, W) float64.

    Returns:
        Correlation in [-1, 1], or NaN.
    """
    x, y = as_planes((x, "x"), (y, "y"), min_size=1)
    dx = x - x.mean()
    dy = y - y.mean()
    den = np.sqrt(np.float64(sum_of_squares(dx) * sum_of_squares(dy)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(sum_of_products(dx, dy)) / den)


def correlation_coefficient(a, b, f) -> float:
    """CC: ``(corr(a, f) + corr(b, f)) / 2``.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.

    Returns:
        Mean correlation in [-1, 1]. Higher is better.
    """
    return (correlation(a, f) + correlation(b, f)) / 2.0


def scd(a, b, f) -> float:
    """SCD, sum of the correlations of differences (Aslantas and Bendes 2015).

    ``SCD = corr(f - b, a) + corr(f - a, b)``: what the fused image adds over one source should
    look like the other source. Symmetric in ``a`` and ``b``.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.

    Returns:
        SCD in [-2, 2]. Higher is better.
    """
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    return correlation(f - b, a) + correlation(f - a, b)
