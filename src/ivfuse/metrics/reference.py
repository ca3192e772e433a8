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
from ._filters import matlab_gaussian_1d, separable_valid_stack
from ._memo import Memo, cached
from .conventions import DEFAULT_CONVENTION, check_convention
from .roi import roi_mask

__all__ = ["mse", "psnr", "rmse", "roi_ssim", "ssim", "ssim_map"]


def _mean_sq(x: np.ndarray, f: np.ndarray) -> float:
    return sum_of_squares(x - f) / f.size


def mse(fused, *, ir, vis, convention: str = DEFAULT_CONVENTION) -> float:
    """MSE: ``(mean((vis - fused)^2) + mean((ir - fused)^2)) / 2``.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        convention: ``vifb`` and ``cddfuse`` on the 0..255 scale; ``tang`` on the 0..1 scale
            (the value divided by 255^2). VIFB's table has no MSE; its "mse" is our RMSE.

    Returns:
        MSE. Lower is better; 0 when ``fused`` equals both sources.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return mse_planes(a, b, f, convention)


def mse_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str) -> float:
    """Mean of MSE(a, f) and MSE(b, f), prepared (H, W) float64 planes in 0..255, in the convention's range."""
    value = (_mean_sq(a, f) + _mean_sq(b, f)) / 2.0
    return value / (255.0 * 255.0) if convention == "tang" else value


def _vifb_rmse(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """VIFB's RMSE: the mean over the sources of ``sqrt(sum((x - fused)^2)) / (H W)``."""
    n = f.size
    return (math.sqrt(sum_of_squares(a - f)) / n + math.sqrt(sum_of_squares(b - f)) / n) / 2.0


def rmse(fused, *, ir, vis, convention: str = DEFAULT_CONVENTION) -> float:
    """RMSE.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        convention: ``vifb``: VIFB's definition, the mean over the two sources of
            ``sqrt(sum((x - fused)^2)) / (H W)`` (not the square root of a mean; values are ~0.05).
            ``cddfuse`` and ``tang`` (whose references have no RMSE): ``sqrt(MSE)`` with that
            convention's MSE.

    Returns:
        RMSE. Lower is better; 0 when ``fused`` equals both sources.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return rmse_planes(a, b, f, convention)


def rmse_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str) -> float:
    """RMSE of prepared planes (a visible, b infrared, f fused), (H, W) float64 in 0..255."""
    if convention == "vifb":
        return _vifb_rmse(a, b, f)
    return math.sqrt(mse_planes(a, b, f, convention))


def psnr(fused, *, ir, vis, convention: str = DEFAULT_CONVENTION) -> float:
    """PSNR in dB, three mutually incompatible definitions.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        convention: ``vifb``: ``20 log10(255 / sqrt(RMSE_vifb))``; ``cddfuse``:
            ``10 log10(max(fused)^2 / MSE)`` with MSE on 0..255; ``tang``: ``20 log10(255 / sqrt(MSE_01))``
            with MSE on 0..1.

    Returns:
        PSNR in dB (``inf`` when ``fused`` equals both sources). Higher is better.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return psnr_planes(a, b, f, convention)


def psnr_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str) -> float:
    """PSNR of prepared planes (a visible, b infrared, f fused), (H, W) float64 in 0..255."""
    with np.errstate(divide="ignore"):
        if convention == "vifb":
            return float(20.0 * np.log10(255.0 / np.sqrt(_vifb_rmse(a, b, f))))
        if convention == "cddfuse":
            return float(10.0 * np.log10(np.max(f) ** 2 / np.float64(mse_planes(a, b, f, "cddfuse"))))
        return float(20.0 * np.log10(255.0 / np.sqrt(np.float64(mse_planes(a, b, f, "tang")))))


# SSIM windows. VIFB and Tang: MATLAB fspecial('gaussian', 11, 1.5), 'valid' filtering, L = 255.
_GAUSS = matlab_gaussian_1d(11, 1.5)
_GAUSS_C = ((0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2)
# Gaussian SSIM runs in float32 on images shifted by 128: the local variance E[x^2] - E[x]^2 then
# involves second moments of at most 128^2 (not 255^2), whose float32 rounding (about 1e-3 here) is
# negligible next to C2 = 58.5. Means, variances and the map are float32; their averages float64.
_GAUSS_SHIFT = 128.0
_GAUSS32 = _GAUSS.astype(np.float32)
# CDDFuse: scikit-image 0.19 defaults, 7x7 uniform window with reflect padding, sample covariance,
# and data_range = 2 because float input without data_range takes the float dtype range [-1, 1].
_SK_WIN = 7
_SK_PAD = (_SK_WIN - 1) // 2
_SK_N = _SK_WIN * _SK_WIN
_SK_C = ((0.01 * 2.0) ** 2, (0.03 * 2.0) ** 2)
# The SSIM formula written with window sums S1 = sum x, S2 = sum x^2, S12 = sum x y instead of
# means: mu = S1 / 49 and the sample (co)variance (49 S12 - S1x S1y) / (49 * 48), so that
# (2 mu_x mu_y + C1)(2 cov + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2)) is
# (2 P + C1') (2 (49 S12 - P) + C2') / ((S1x^2 + S1y^2 + C1') (Qx + Qy + C2')) with P = S1x S1y,
# Q = 49 S2 - S1^2, C1' = 49^2 C1 and C2' = 49 * 48 C2.
_SK_C1 = _SK_N * _SK_N * _SK_C[0]
_SK_C2 = _SK_N * (_SK_N - 1) * _SK_C[1]
_ONES = np.ones(_SK_WIN)
# Integer images with |x| <= 585 have window sums of x^2 (and of x y) below 2^24: float32 holds
# every partial sum exactly, so the box sums are exact in float32 (and all the integer products
# above exact in float64). The CDDFuse convention always scores integer images.
_SK_EXACT_MAX = 585.0


def _stack(shape: tuple[int, int], k: int, dtype) -> np.ndarray:
    """Uninitialised (H, k, W) array: k images side by side for :func:`separable_valid_stack`."""
    return np.empty((shape[0], k, shape[1]), dtype=dtype)


def _exact_box(img: np.ndarray) -> bool:
    """Whether the box sums of ``img`` are exact in float32 (integer values, |x| <= 585)."""
    if img.size == 0 or max(-float(img.min()), float(img.max())) > _SK_EXACT_MAX:
        return False
    return bool(np.array_equal(img, np.rint(img)))


def _box_stats(img: np.ndarray):
    """Per-image statistics of CDDFuse's SSIM: the image as filtered, S1, S1^2 and Q = 49 S2 - S1^2 (float64)."""
    x = img.astype(np.float32) if _exact_box(img) else np.asarray(img, dtype=np.float64)
    stack = _stack(x.shape, 2, x.dtype)
    stack[:, 0] = x
    np.multiply(x, x, out=stack[:, 1])
    s1, s2 = separable_valid_stack(stack, _ONES)
    s1 = s1.astype(np.float64)
    s1_sq = s1 * s1
    q = s2.astype(np.float64)
    q *= _SK_N
    q -= s1_sq
    return x, s1, s1_sq, q


def _box_maps(sources, f, memo):
    """CDDFuse SSIM maps from window sums (see _SK_C1)."""
    x_f, s1_f, s1_sq_f, q_f = cached(memo, ("ssim", "cddfuse"), f, _box_stats)
    stats = [cached(memo, ("ssim", "cddfuse"), x, _box_stats) for x in sources]
    # The cross sums are exact in float32 when both images are exact.
    dtype = np.float32 if x_f.dtype == np.float32 and all(s[0].dtype == np.float32 for s in stats) else np.float64
    stack = _stack(f.shape, len(sources), dtype)
    for i, (x, *_rest) in enumerate(stats):
        np.multiply(x, x_f, out=stack[:, i], dtype=dtype)
    maps = []
    for (_, s1_x, s1_sq_x, q_x), s12 in zip(stats, separable_valid_stack(stack, _ONES)):
        p = s1_x * s1_f
        b = s12.astype(np.float64)
        b *= _SK_N
        b -= p
        maps.append(_ssim_from_moments(p, b, s1_sq_x + s1_sq_f, q_x + q_f, _SK_C1, _SK_C2))
    return maps


def _ssim_from_moments(mu_xy, cov, mu_sq_sum, var_sum, c1, c2):
    """``(2 mu_xy + c1)(2 cov + c2) / ((mu_sq_sum + c1)(var_sum + c2))``, in place in the four arrays.

    The SSIM map from its local moments (or any common multiple of them, with the constants
    scaled to match); returns the buffer of ``mu_xy``.
    """
    cov *= 2.0
    cov += c2
    mu_xy *= 2.0
    mu_xy += c1
    mu_xy *= cov
    mu_sq_sum += c1
    var_sum += c2
    mu_sq_sum *= var_sum
    mu_xy /= mu_sq_sum
    return mu_xy


def _gauss_stats(img: np.ndarray):
    """Per-image statistics of the Gaussian SSIM (float32): shifted image, shifted mean, mean, mean^2, variance."""
    shifted = np.subtract(img, _GAUSS_SHIFT, dtype=np.float32)
    stack = _stack(img.shape, 2, np.float32)
    stack[:, 0] = shifted
    np.multiply(shifted, shifted, out=stack[:, 1])
    mu_c, var = separable_valid_stack(stack, _GAUSS32)
    var -= mu_c * mu_c
    mu = mu_c + np.float32(_GAUSS_SHIFT)
    return shifted, mu_c, mu, mu * mu, var


def _gauss_maps(sources, f, memo):
    """VIFB / Tang SSIM maps (Gaussian window, 'valid'), float32."""
    x_f, mu_c_f, mu_f, mu_sq_f, var_f = cached(memo, ("ssim", "gauss"), f, _gauss_stats)
    stats = [cached(memo, ("ssim", "gauss"), x, _gauss_stats) for x in sources]
    stack = _stack(f.shape, len(sources), np.float32)
    for i, st in enumerate(stats):
        np.multiply(st[0], x_f, out=stack[:, i])
    c1, c2 = (np.float32(c) for c in _GAUSS_C)
    maps = []
    for (_, mu_c_x, mu_x, mu_sq_x, var_x), cov in zip(stats, separable_valid_stack(stack, _GAUSS32)):
        cov -= mu_c_x * mu_c_f
        maps.append(_ssim_from_moments(mu_x * mu_f, cov, mu_sq_x + mu_sq_f, var_x + var_f, c1, c2))
    return maps


def _ssim_maps(sources: list[np.ndarray], f: np.ndarray, convention: str, memo: Memo | None = None):
    """SSIM maps of each source against ``f`` and the image offset of map pixel (0, 0)."""
    if convention == "cddfuse":
        # scikit-image's reflect-padded uniform filter, cropped by the half-window: the crop
        # removes every output that saw the padding, so this is the 'valid' box filter.
        return _box_maps(sources, f, memo), _SK_PAD
    return _gauss_maps(sources, f, memo), len(_GAUSS) // 2


def ssim_min_size(convention: str) -> int:
    """Smallest image side the convention's SSIM window fits in, in pixels."""
    return _SK_WIN if convention == "cddfuse" else len(_GAUSS)


def ssim_map(fused, *, source, convention: str = DEFAULT_CONVENTION) -> np.ndarray:
    """SSIM map of one source against the fused image, over the region the convention averages.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        source: (H, W) float64 source (infrared or visible) in 0..255, keyword-only.
        convention: ``vifb`` / ``tang``: Gaussian 11x11 window, sigma 1.5, L = 255, 'valid'
            filtering, map of shape (H - 10, W - 10) whose pixel (i, j) is centred on image pixel
            (i + 5, j + 5). ``cddfuse``: scikit-image 0.19 defaults (7x7 uniform window, sample
            covariance, data range 2), map cropped by 3 pixels to (H - 6, W - 6).

    Returns:
        The SSIM map, float64, values in [-1, 1].
    """
    convention = check_convention(convention)
    f, x = as_planes((fused, "fused"), (source, "source"), min_size=ssim_min_size(convention))
    maps, _ = _ssim_maps([x], f, convention)
    return np.asarray(maps[0], dtype=np.float64)


def _combine(values: list[float], convention: str) -> float:
    """VIFB and CDDFuse report SSIM(A, F) + SSIM(B, F); Tang reports their average."""
    total = float(sum(values))
    return total / len(values) if convention == "tang" else total


def ssim(fused, *, ir, vis, convention: str = DEFAULT_CONVENTION) -> float:
    """SSIM of the fused image against both sources, combined per convention.

    Args:
        fused: (H, W) float64 fused image in 0..255 (at least 11x11; 7x7 for ``cddfuse``).
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        convention: window as in :func:`ssim_map`; ``vifb`` and ``cddfuse`` report the **sum**
            ``SSIM(ir, fused) + SSIM(vis, fused)`` (maximum 2), ``tang`` the **average** (maximum 1).

    Returns:
        Combined SSIM. Higher is better.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=ssim_min_size(convention))
    return ssim_planes(a, b, f, convention)


def ssim_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str, memo: Memo | None = None) -> float:
    """SSIM of f against a and b (summed or averaged per convention), (H, W) float64 planes in 0..255."""
    maps, _ = _ssim_maps([a, b], f, convention, memo)
    return _combine([float(m.mean(dtype=np.float64)) for m in maps], convention)


def roi_ssim(fused, *, ir, vis, roi, convention: str = DEFAULT_CONVENTION) -> float:
    """ROI-SSIM: SSIM restricted to a region of interest.

    Definition: take the convention's SSIM maps of ``vis`` and ``ir`` against ``fused`` (see
    :func:`ssim_map`); each map pixel belongs to the image pixel its window is centred on. For each
    source, average its map over the ROI pixels (weighted by the mask value for a float mask)
    that lie in the region the convention averages over (all pixels at least 5 from the border,
    3 for ``cddfuse``), then combine the two averages as the convention combines SSIM (sum for
    ``vifb`` and ``cddfuse``, mean for ``tang``). A ROI covering the whole image gives exactly
    :func:`ssim`.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        roi: (N, 4) pixel boxes ``(x0, y0, x1, y1)`` (half-open) or an (H, W) bool/float mask;
            see :func:`ivfuse.metrics.roi_mask`.
        convention: ``vifb``, ``cddfuse`` or ``tang``.

    Returns:
        ROI-SSIM, or NaN when the ROI has no weight inside the averaged region. Higher is better.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=ssim_min_size(convention))
    return roi_ssim_planes(a, b, f, roi_mask(roi, f.shape), convention)


def roi_ssim_planes(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, weights: np.ndarray, convention: str, memo: Memo | None = None
) -> float:
    """SSIM of f against a and b weighted by ``weights`` (H, W), planes (H, W) float64 in 0..255."""
    """ROI-SSIM with the ROI already turned into (H, W) weights."""
    h, w = f.shape
    pad = _SK_PAD if convention == "cddfuse" else len(_GAUSS) // 2
    inner = weights[pad : h - pad, pad : w - pad]
    total = float(inner.sum())
    if total <= 0.0:
        return float("nan")
    maps, _ = _ssim_maps([a, b], f, convention, memo)
    return _combine([float(np.sum(m * inner, dtype=np.float64) / total) for m in maps], convention)
