"""Reference-based metrics: MSE, RMSE, PSNR, SSIM and ROI-SSIM.

"Reference" here means the source images: each metric compares the fused image with the
visible and the infrared image and combines the two results. All functions take single-channel
float64 arrays in 0..255; PSNR, MSE and RMSE are non-standard and differ per convention, exactly
as the reference evaluators compute them (see ``docs/metrics.md``).
"""

from __future__ import annotations

import math

import numpy as np

from ._common import as_planes, sum_of_squares
from ._filters import matlab_gaussian_1d, separable_valid
from ._memo import Memo, cached
from .conventions import DEFAULT_CONVENTION, check_convention
from .roi import roi_mask

__all__ = ["mse", "psnr", "rmse", "roi_ssim", "ssim", "ssim_map"]


def _mean_sq(x: np.ndarray, f: np.ndarray) -> float:
    return sum_of_squares(x - f) / f.size


def mse(a, b, f, convention: str = DEFAULT_CONVENTION) -> float:
    """MSE: ``(mean((a - f)^2) + mean((b - f)^2)) / 2``.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.
        convention: ``vifb`` and ``cddfuse`` on the 0..255 scale; ``tang`` on the 0..1 scale
            (the value divided by 255^2). VIFB's table has no MSE; its "mse" is our RMSE.

    Returns:
        MSE. Lower is better; 0 when ``f`` equals both sources.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    value = (_mean_sq(a, f) + _mean_sq(b, f)) / 2.0
    return value / (255.0 * 255.0) if convention == "tang" else value


def _vifb_rmse(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """VIFB's RMSE: the mean over the sources of ``sqrt(sum((x - f)^2)) / (H W)``."""
    n = f.size
    return (math.sqrt(sum_of_squares(a - f)) / n + math.sqrt(sum_of_squares(b - f)) / n) / 2.0


def rmse(a, b, f, convention: str = DEFAULT_CONVENTION) -> float:
    """RMSE.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.
        convention: ``vifb``: VIFB's definition, the mean over the two sources of
            ``sqrt(sum((x - f)^2)) / (H W)`` (not the square root of a mean; values are ~0.05).
            ``cddfuse`` and ``tang`` (whose references have no RMSE): ``sqrt(MSE)`` with that
            convention's MSE.

    Returns:
        RMSE. Lower is better; 0 when ``f`` equals both sources.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    if convention == "vifb":
        return _vifb_rmse(a, b, f)
    return math.sqrt(mse(a, b, f, convention))


def psnr(a, b, f, convention: str = DEFAULT_CONVENTION) -> float:
    """PSNR in dB, three mutually incompatible definitions.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.
        convention: ``vifb``: ``20 log10(255 / sqrt(RMSE_vifb))``; ``cddfuse``:
            ``10 log10(max(f)^2 / MSE)`` with MSE on 0..255; ``tang``: ``20 log10(255 / sqrt(MSE_01))``
            with MSE on 0..1.

    Returns:
        PSNR in dB (``inf`` when ``f`` equals both sources). Higher is better.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    with np.errstate(divide="ignore"):
        if convention == "vifb":
            return float(20.0 * np.log10(255.0 / np.sqrt(_vifb_rmse(a, b, f))))
        if convention == "cddfuse":
            return float(10.0 * np.log10(np.max(f) ** 2 / np.float64(mse(a, b, f, "cddfuse"))))
        return float(20.0 * np.log10(255.0 / np.sqrt(np.float64(mse(a, b, f, "tang")))))


# SSIM windows. VIFB and Tang: MATLAB fspecial('gaussian', 11, 1.5), 'valid' filtering, L = 255.
_GAUSS = matlab_gaussian_1d(11, 1.5)
_GAUSS_C = ((0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2)
# CDDFuse: scikit-image 0.19 defaults, 7x7 uniform window with reflect padding, sample covariance,
# and data_range = 2 because float input without data_range takes the float dtype range [-1, 1].
_SK_WIN = 7
_SK_PAD = (_SK_WIN - 1) // 2
_SK_NORM = _SK_WIN * _SK_WIN / (_SK_WIN * _SK_WIN - 1.0)
_SK_C = ((0.01 * 2.0) ** 2, (0.03 * 2.0) ** 2)
_BOX = np.full(_SK_WIN, 1.0 / _SK_WIN)


def _local_mean(img: np.ndarray, convention: str) -> np.ndarray:
    """Windowed mean over the region the convention averages (map coordinates)."""
    if convention == "cddfuse":
        # scikit-image's reflect-padded uniform filter, cropped by the half-window: the crop
        # removes every output that saw the padding, so this is the 'valid' box filter.
        return separable_valid(img, _BOX)
    return separable_valid(img, _GAUSS)


def _ssim_stats(img: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image SSIM statistics: local mean, its square and the local variance."""
    mu = _local_mean(img, convention)
    mu_sq = mu * mu
    var = _local_mean(img * img, convention) - mu_sq
    if convention == "cddfuse":
        var *= _SK_NORM
    return mu, mu_sq, var


def _ssim_maps(sources: list[np.ndarray], f: np.ndarray, convention: str, memo: Memo | None = None):
    """SSIM maps of each source against ``f`` and the image offset of map pixel (0, 0)."""
    stats_f = cached(memo, ("ssim", convention), f, lambda im: _ssim_stats(im, convention))
    mu_f, mu_f_sq, var_f = stats_f
    c1, c2 = _SK_C if convention == "cddfuse" else _GAUSS_C
    maps = []
    for x in sources:
        mu_x, mu_x_sq, var_x = cached(memo, ("ssim", convention), x, lambda im: _ssim_stats(im, convention))
        mu_xf = mu_x * mu_f
        cov = _local_mean(x * f, convention)
        cov -= mu_xf
        if convention == "cddfuse":
            cov *= _SK_NORM
        cov *= 2.0
        cov += c2
        num = mu_xf
        num *= 2.0
        num += c1
        num *= cov
        den = mu_x_sq + mu_f_sq
        den += c1
        den2 = var_x + var_f
        den2 += c2
        den *= den2
        num /= den
        maps.append(num)
    offset = _SK_PAD if convention == "cddfuse" else len(_GAUSS) // 2
    return maps, offset


def _min_size(convention: str) -> int:
    return _SK_WIN if convention == "cddfuse" else len(_GAUSS)


def ssim_map(x, f, convention: str = DEFAULT_CONVENTION) -> np.ndarray:
    """SSIM map of one source against the fused image, over the region the convention averages.

    Args:
        x: (H, W) float64 source in 0..255.
        f: (H, W) float64 fused image in 0..255.
        convention: ``vifb`` / ``tang``: Gaussian 11x11 window, sigma 1.5, L = 255, 'valid'
            filtering, map of shape (H - 10, W - 10) whose pixel (i, j) is centred on image pixel
            (i + 5, j + 5). ``cddfuse``: scikit-image 0.19 defaults (7x7 uniform window, sample
            covariance, data range 2), map cropped by 3 pixels to (H - 6, W - 6).

    Returns:
        The SSIM map, float64, values in [-1, 1].
    """
    convention = check_convention(convention)
    x, f = as_planes((x, "x"), (f, "f"), min_size=_min_size(convention))
    maps, _ = _ssim_maps([x], f, convention)
    return maps[0]


def _combine(values: list[float], convention: str) -> float:
    """VIFB and CDDFuse report SSIM(A, F) + SSIM(B, F); Tang reports their average."""
    total = float(sum(values))
    return total / len(values) if convention == "tang" else total


def ssim(a, b, f, convention: str = DEFAULT_CONVENTION) -> float:
    """SSIM of the fused image against both sources, combined per convention.

    Args:
        a: (H, W) float64 source in 0..255 (at least 11x11; 7x7 for ``cddfuse``).
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.
        convention: window as in :func:`ssim_map`; ``vifb`` and ``cddfuse`` report the **sum**
            ``SSIM(a, f) + SSIM(b, f)`` (maximum 2), ``tang`` the **average** (maximum 1).

    Returns:
        Combined SSIM. Higher is better.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=_min_size(convention))
    return _ssim(a, b, f, convention)


def _ssim(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str, memo: Memo | None = None) -> float:
    maps, _ = _ssim_maps([a, b], f, convention, memo)
    return _combine([float(m.mean()) for m in maps], convention)


def roi_ssim(a, b, f, roi, convention: str = DEFAULT_CONVENTION) -> float:
    """ROI-SSIM: SSIM restricted to a region of interest.

    Definition: take the convention's SSIM maps of ``a`` and ``b`` against ``f`` (see
    :func:`ssim_map`); each map pixel belongs to the image pixel its window is centred on. For each
    source, average its map over the ROI pixels (weighted by the mask value for a float mask)
    that lie in the region the convention averages over (all pixels at least 5 from the border,
    3 for ``cddfuse``), then combine the two averages as the convention combines SSIM (sum for
    ``vifb`` and ``cddfuse``, mean for ``tang``). A ROI covering the whole image gives exactly
    :func:`ssim`.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.
        roi: (N, 4) pixel boxes ``(x0, y0, x1, y1)`` (half-open) or an (H, W) bool/float mask;
            see :func:`ivfuse.metrics.roi_mask`.
        convention: ``vifb``, ``cddfuse`` or ``tang``.

    Returns:
        ROI-SSIM, or NaN when the ROI has no weight inside the averaged region. Higher is better.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=_min_size(convention))
    return _roi_ssim(a, b, f, roi_mask(roi, f.shape), convention)


def _roi_ssim(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, weights: np.ndarray, convention: str, memo: Memo | None = None
) -> float:
    """ROI-SSIM with the ROI already turned into (H, W) weights."""
    h, w = f.shape
    pad = _SK_PAD if convention == "cddfuse" else len(_GAUSS) // 2
    inner = weights[pad : h - pad, pad : w - pad]
    total = float(inner.sum())
    if total <= 0.0:
        return float("nan")
    maps, _ = _ssim_maps([a, b], f, convention, memo)
    return _combine([float(np.sum(m * inner) / total) for m in maps], convention)
