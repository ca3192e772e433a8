"""Statistical metrics: SD (standard deviation), CC (correlation coefficient), SCD.

All functions take single-channel float64 arrays in 0..255 and are identical in the three
conventions (only the input handling before them differs).
"""

from __future__ import annotations

import numpy as np

from ._common import as_plane, as_planes, sum_of_products, sum_of_squares
from ._memo import Memo, cached

__all__ = ["correlation", "correlation_coefficient", "scd", "standard_deviation"]


def standard_deviation(fused) -> float:
    """SD: population standard deviation ``sqrt(sum((F - mean)^2) / (M N))`` (VIFB calls it Variance).

    Args:
        fused: (H, W) float64 image in 0..255.

    Returns:
        SD in gray levels. Higher is better (more contrast).
    """
    f = as_plane(fused, "fused", 1)
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


def correlation_coefficient(fused, *, ir, vis) -> float:
    """CC: ``(corr(vis, fused) + corr(ir, fused)) / 2``.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.

    Returns:
        Mean correlation in [-1, 1]. Higher is better.
    """
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return correlation_coefficient_planes(a, b, f, Memo())


def scd(fused, *, ir, vis) -> float:
    """SCD, sum of the correlations of differences (Aslantas and Bendes 2015).

    ``SCD = corr(fused - ir, vis) + corr(fused - vis, ir)``: what the fused image adds over one
    source should look like the other source. Symmetric in ``ir`` and ``vis``.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.

    Returns:
        SCD in [-2, 2]. Higher is better.
    """
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return scd_planes(a, b, f, Memo())


# CC and SCD from the centred images: with x' = x - mean(x),
# corr(x, y) = <x', y'> / sqrt(<x', x'> <y', y'>), and since centring is linear,
# (f - b)' = f' - b', so SCD needs only the products of the three
# centred images: <(f - b)', a'> = <f', a'> - <b', a'> and
# <(f - b)', (f - b)'> = <f', f'> - 2 <f', b'> + <b', b'>. The centred images and their products
# are computed once per call and shared by CC and SCD.


def _centred(img: np.ndarray) -> np.ndarray:
    return img - img.mean()


def _dot(x: np.ndarray, y: np.ndarray, memo: Memo | None) -> float:
    """``<x', y'>`` of the centred images, through ``memo``.

    Keyed on ``y`` (with ``x`` in the tag), so that entries involving a fused image are per call.
    """
    xc = cached(memo, ("centred",), x, _centred)
    return cached(
        memo, ("centred-dot", id(x)), y, lambda im: sum_of_products(xc, cached(memo, ("centred",), im, _centred))
    )


def _corr(num: float, xx: float, yy: float) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(num) / np.sqrt(np.float64(xx * yy)))


def correlation_coefficient_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    """Mean of CC(a, f) and CC(b, f), prepared (H, W) float64 planes in 0..255."""
    ff = _dot(f, f, memo)
    return (_corr(_dot(a, f, memo), _dot(a, a, memo), ff) + _corr(_dot(b, f, memo), _dot(b, b, memo), ff)) / 2.0


def scd_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    """Sum of the correlations of differences of prepared (H, W) float64 planes in 0..255."""
    aa, bb, ff = _dot(a, a, memo), _dot(b, b, memo), _dot(f, f, memo)
    af, bf, ab = _dot(a, f, memo), _dot(b, f, memo), _dot(a, b, memo)
    # corr(f - b, a) + corr(f - a, b)
    return _corr(af - ab, ff - 2.0 * bf + bb, aa) + _corr(bf - ab, ff - 2.0 * af + aa, bb)
