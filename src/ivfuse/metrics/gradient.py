"""Gradient metrics: SF, AG, EI (sharpness of the fused image) and Qabf, Nabf (edge transfer).

All functions take single-channel float64 arrays in 0..255.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import as_plane, as_planes, sum_of_squares
from ._filters import sobel
from ._memo import Memo, cached
from .conventions import DEFAULT_CONVENTION, check_convention

__all__ = ["average_gradient", "edge_intensity", "nabf", "qabf", "spatial_frequency"]


def spatial_frequency(img, convention: str = DEFAULT_CONVENTION) -> float:
    """SF: root of the mean squared horizontal and vertical first differences.

    Args:
        img: (H, W) float64 in 0..255. For a colour image VIFB scores the (H, 3W) side-by-side
            concatenation of the R, G and B planes; :func:`ivfuse.metrics.evaluate` does that.
        convention: ``vifb`` divides both sums of squared differences by ``H W``
            (``SF = sqrt((sum dx^2 + sum dy^2) / (H W))``); ``cddfuse`` and ``tang`` take each mean
            over its own count (``sqrt(mean(dx^2) + mean(dy^2))``). Tang's published tables hold
            this value divided by 255.

    Returns:
        SF in gray levels. Higher is better.
    """
    convention = check_convention(convention)
    f = as_plane(img, "img")
    h, w = f.shape
    rf = sum_of_squares(f[:, 1:] - f[:, :-1])
    cf = sum_of_squares(f[1:, :] - f[:-1, :])
    if convention == "vifb":
        return float(np.sqrt((rf + cf) / f.size))
    return float(np.sqrt(rf / (h * (w - 1)) + cf / ((h - 1) * w)))


def average_gradient(img, convention: str = DEFAULT_CONVENTION) -> float:
    """AG: average of ``sqrt((gx^2 + gy^2) / 2)`` with MATLAB ``gradient`` derivatives.

    Derivatives are central differences ``(x[i+1] - x[i-1]) / 2`` inside and one-sided at the
    border (``numpy.gradient`` computes the same).

    Args:
        img: (H, W) float64 in 0..255, at least 2x2.
        convention: ``vifb`` and ``tang`` divide the sum over all H W pixels by ``(H - 1)(W - 1)``;
            ``cddfuse`` takes the plain mean.

    Returns:
        AG in gray levels per pixel. Higher is better.
    """
    convention = check_convention(convention)
    f = as_plane(img, "img")
    gy, gx = np.gradient(f)
    s = np.sqrt((gx * gx + gy * gy) / 2.0)
    if convention == "cddfuse":
        return float(s.mean())
    h, w = f.shape
    return float(s.sum() / ((h - 1) * (w - 1)))


def edge_intensity(img) -> float:
    """EI (VIFB): mean Sobel gradient magnitude, MATLAB ``imfilter(F, fspecial('sobel'), 'replicate')``.

    Args:
        img: (H, W) float64 in 0..255.

    Returns:
        EI in gray levels (Sobel gain 4 included). Higher is better.
    """
    f = as_plane(img, "img", 1)
    dx, dy = sobel(f, "replicate")
    return float(np.mean(np.sqrt(dx * dx + dy * dy)))


# Qabf (Xydeas and Petrovic 2000) constants, as in all three references.
_QABF = {"Tg": 0.9994, "kg": -15.0, "Dg": 0.5, "Ta": 0.9879, "ka": -22.0, "Da": 0.8}
# Value range each reference feeds Qabf: it only matters where the reference sets the strength
# term to gF (where gA == gF exactly); VIFB multiplies the 0..255 image by 255 (``255*im2double``
# of a double), CDDFuse passes 0..255, Tang passes ``im2double`` images (0..1).
_QABF_SCALE = {"vifb": 255.0, "cddfuse": 1.0, "tang": 1.0}


def _qabf_edges(img: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength and orientation from MATLAB ``conv2(img, h, 'same')`` with the Sobel kernels.

    The strength is that of ``scale * img``; scaling after the square root keeps exactly the
    pattern of equal strengths that the reference's ``gA == gF`` test sees.
    """
    dx, dy = sobel(img, "zero")
    # conv2 flips the kernels [-1 0 1; -2 0 2; -1 0 1] and [1 2 1; 0 0 0; -1 -2 -1]: Sx = -dx, Sy = dy.
    g = dx * dx
    g += dy * dy
    np.sqrt(g, out=g)
    if scale != 1.0:
        g *= scale
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.divide(dy, dx)
    np.negative(a, out=a)  # Sy / Sx
    np.arctan(a, out=a)
    np.copyto(a, math.pi / 2, where=dx == 0)
    return g, a


def _logistic(x: np.ndarray, top: float, k: float, centre: float) -> np.ndarray:
    """``top / (1 + exp(k (x - centre)))``, computed in place in ``x``."""
    x -= centre
    x *= k
    np.exp(x, out=x)
    x += 1.0
    np.divide(top, x, out=x)
    return x


def _qabf_preservation(g_src: np.ndarray, a_src: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    """Per-pixel edge preservation Q^{XF} = Q_g * Q_a."""
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = np.minimum(g_src, g_f)
        strength /= np.maximum(g_src, g_f)
    np.copyto(strength, g_f, where=g_src == g_f)  # the references' quirk: gF itself where equal
    # Orientation term 1 - |aX - aF| / (pi/2) folded into its logistic's exponent:
    # ka (1 - d / (pi/2) - Da) = ka (1 - Da) - (ka / (pi/2)) d.
    exponent = a_src - a_f
    np.abs(exponent, out=exponent)
    exponent *= -_QABF["ka"] / (math.pi / 2)
    exponent += _QABF["ka"] * (1.0 - _QABF["Da"])
    np.exp(exponent, out=exponent)
    exponent += 1.0
    q = _logistic(strength, _QABF["Tg"], _QABF["kg"], _QABF["Dg"])
    q /= exponent
    q *= _QABF["Ta"]
    return q


def qabf(a, b, f, convention: str = DEFAULT_CONVENTION) -> float:
    """Qabf: gradient-based edge transfer of Xydeas and Petrovic (2000).

    Sobel responses with zero padding give strength ``g`` and orientation ``atan(Sy / Sx)``
    (``pi / 2`` where ``Sx = 0``) per pixel; the preservation of source X in F is
    ``Tg / (1 + exp(kg (G - Dg))) * Ta / (1 + exp(ka (A - Da)))`` with ``G = min(gX/gF, gF/gX)``
    and ``A = 1 - |aX - aF| / (pi / 2)``, and ``Q = sum(QAF gA + QBF gB) / sum(gA + gB)``.

    Where ``gX == gF`` the references set ``G = gF`` (not 1). That makes the value depend on the
    range the reference fed in, so ``convention`` selects it: ``vifb`` 0..65025, ``cddfuse``
    0..255, ``tang`` 0..1. Everything else is scale-free.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.
        convention: ``vifb``, ``cddfuse`` or ``tang``.

    Returns:
        Qabf in [0, 1) (about 0.975 when F = A = B with edges). Higher is better; NaN when no
        source has an edge.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    return _qabf(a, b, f, convention)


def _qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str, memo: Memo | None = None) -> float:
    scale = _QABF_SCALE[convention]
    g_a, a_a = cached(memo, ("qabf", scale), a, lambda im: _qabf_edges(im, scale))
    g_b, a_b = cached(memo, ("qabf", scale), b, lambda im: _qabf_edges(im, scale))
    g_f, a_f = cached(memo, ("qabf", scale), f, lambda im: _qabf_edges(im, scale))
    q_af = _qabf_preservation(g_a, a_a, g_f, a_f)
    q_bf = _qabf_preservation(g_b, a_b, g_f, a_f)
    q_af *= g_a
    q_bf *= g_b
    with np.errstate(invalid="ignore", divide="ignore"):
        return float((np.sum(q_af) + np.sum(q_bf)) / (np.sum(g_a) + np.sum(g_b)))


# Nabf constants (Petrovic's artefact measure as modified by B. K. Shreyamsha Kumar, 2013).
_NABF = {
    "Td": 2.0,
    "wt_min": 0.001,
    "Lg": 1.5,
    "Nrg": 0.9999,
    "kg": 19.0,
    "sg": 0.5,
    "Nra": 0.9995,
    "ka": 22.0,
    "sa": 0.5,
}


def _nabf_features(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sobel/8 with mirror padding: strength, orientation ``atan(gv / gh)`` (0 where both are 0), weight."""
    # gv = dx / 8 and gh = dy / 8; scaling by a power of two is exact, so the strength can be
    # scaled after the square root and the orientation needs no scaling at all.
    dx, dy = sobel(img, "mirror")
    g = dy * dy
    g += dx * dx
    np.sqrt(g, out=g)
    g *= 0.125
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.divide(dx, dy)
    np.arctan(a, out=a)  # gh == 0 gives +-pi/2, like MATLAB's atan(+-Inf)
    np.copyto(a, 0.0, where=g == 0)  # both responses 0
    return g, a, _nabf_weights(g)


def _nabf_preservation(g_src: np.ndarray, a_src: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    c = _NABF
    # Smaller over larger strength; 0 where either is 0 (then the smaller one is 0).
    larger = np.maximum(g_src, g_f)
    ratio = np.minimum(g_src, g_f)
    np.divide(ratio, larger, out=ratio, where=larger > 0)
    orientation = a_src - a_f
    np.abs(orientation, out=orientation)
    orientation -= math.pi / 2
    np.abs(orientation, out=orientation)
    orientation *= 2.0 / math.pi
    q = _logistic(ratio, c["Nrg"], -c["kg"], c["sg"])
    q *= _logistic(orientation, c["Nra"], -c["ka"], c["sa"])
    return np.sqrt(q, out=q)


def nabf(a, b, f) -> float:
    """Nabf: fusion artefacts, Petrovic's measure as modified by Shreyamsha Kumar (SIViP 2013).

    With Sobel/8 edges (mirror padding), per-pixel preservation ``Q^{XF} = sqrt(Q_g Q_a)``
    (``Q_g = 0.9999 / (1 + exp(-19 (G - 0.5)))``, ``Q_a = 0.9995 / (1 + exp(-22 (A - 0.5)))``) and
    weights ``w_X = g_X^1.5`` where ``g_X >= 2`` else 0.001, Nabf is
    ``sum(N (1 - QAF) wA + N (1 - QBF) wB) / sum(wA + wB)`` where ``N`` marks pixels whose fused
    edge is stronger than both sources' (edges that came from nowhere). Thresholds assume 0..255
    images; this is the published definition, used by every convention.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.

    Returns:
        Nabf in [0, 1]. Lower is better; 0 when F adds no edge.
    """
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=2)
    return _nabf(a, b, f)


def _nabf_weights(g: np.ndarray) -> np.ndarray:
    """``g^1.5`` where ``g >= Td``, else ``wt_min``."""
    return np.where(g >= _NABF["Td"], g * np.sqrt(g), _NABF["wt_min"])


def _nabf(a: np.ndarray, b: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    g_a, a_a, w_a = cached(memo, ("nabf",), a, _nabf_features)
    g_b, a_b, w_b = cached(memo, ("nabf",), b, _nabf_features)
    g_f, a_f, _ = cached(memo, ("nabf",), f, _nabf_features)
    artefact = (g_f > g_a) & (g_f > g_b)
    loss_a = 1.0 - _nabf_preservation(g_a, a_a, g_f, a_f)
    loss_a *= w_a
    loss_b = 1.0 - _nabf_preservation(g_b, a_b, g_f, a_f)
    loss_b *= w_b
    loss_a += loss_b
    num = np.sum(loss_a, where=artefact)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(num / (np.sum(w_a) + np.sum(w_b)))
