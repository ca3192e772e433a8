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


def spatial_frequency(fused, *, convention: str = DEFAULT_CONVENTION) -> float:
    """SF: root of the mean squared horizontal and vertical first differences.

    Args:
        fused: (H, W) float64 image in 0..255. For a colour image VIFB scores the (H, 3W) side-by-side
            concatenation of the R, G and B planes; :func:`ivfuse.metrics.evaluate` does that.
        convention: ``vifb`` divides both sums of squared differences by ``H W``
            (``SF = sqrt((sum dx^2 + sum dy^2) / (H W))``); ``cddfuse`` and ``tang`` take each mean
            over its own count (``sqrt(mean(dx^2) + mean(dy^2))``). Tang's published tables hold
            this value divided by 255.

    Returns:
        SF in gray levels. Higher is better.
    """
    convention = check_convention(convention)
    f = as_plane(fused, "fused")
    h, w = f.shape
    rf = sum_of_squares(f[:, 1:] - f[:, :-1])
    cf = sum_of_squares(f[1:, :] - f[:-1, :])
    if convention == "vifb":
        return float(np.sqrt((rf + cf) / f.size))
    return float(np.sqrt(rf / (h * (w - 1)) + cf / ((h - 1) * w)))


def average_gradient(fused, *, convention: str = DEFAULT_CONVENTION) -> float:
    """AG: average of ``sqrt((gx^2 + gy^2) / 2)`` with MATLAB ``gradient`` derivatives.

    Derivatives are central differences ``(x[i+1] - x[i-1]) / 2`` inside and one-sided at the
    border (``numpy.gradient`` computes the same).

    Args:
        fused: (H, W) float64 image in 0..255, at least 2x2.
        convention: ``vifb`` and ``tang`` divide the sum over all H W pixels by ``(H - 1)(W - 1)``;
            ``cddfuse`` takes the plain mean.

    Returns:
        AG in gray levels per pixel. Higher is better.
    """
    convention = check_convention(convention)
    f = as_plane(fused, "fused")
    # float32: the differences of integer images (halves of integers) and their squares are
    # exact, the square root carries a relative 6e-8; the sum is float64.
    gy, gx = np.gradient(f.astype(np.float32))
    gx *= gx
    gy *= gy
    gx += gy
    gx *= np.float32(0.5)
    total = float(np.sum(np.sqrt(gx, out=gx), dtype=np.float64))
    if convention == "cddfuse":
        return total / f.size
    h, w = f.shape
    return total / ((h - 1) * (w - 1))


def edge_intensity(fused) -> float:
    """EI (VIFB): mean Sobel gradient magnitude, MATLAB ``imfilter(F, fspecial('sobel'), 'replicate')``.

    Args:
        fused: (H, W) float64 image in 0..255.

    Returns:
        EI in gray levels (Sobel gain 4 included). Higher is better.
    """
    f = as_plane(fused, "fused", 1)
    dx, dy = sobel(f, "replicate", np.float32)  # exact on integer images; sqrt to 6e-8, float64 sum
    dx *= dx
    dy *= dy
    dx += dy
    return float(np.sum(np.sqrt(dx, out=dx), dtype=np.float64)) / f.size


# Qabf (Xydeas and Petrovic 2000) constants, as in all three references.
_QABF = {"Tg": 0.9994, "kg": -15.0, "Dg": 0.5, "Ta": 0.9879, "ka": -22.0, "Da": 0.8}
# Value range each reference feeds Qabf: it only matters where the reference sets the strength
# term to gF (where gA == gF exactly); VIFB multiplies the 0..255 image by 255 (``255*im2double``
# of a double), CDDFuse passes 0..255. Tang passes ``im2double`` images (0..1), whose Sobel
# responses are not exact: that convention has its own edge maps (:func:`qabf_edges_unit`).
_QABF_SCALE = {"vifb": 255.0, "cddfuse": 1.0}


def _qabf_edges(img: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared strength, strength and orientation from MATLAB ``conv2(img, h, 'same')`` with the Sobel kernels.

    float32: on integer-valued images the Sobel responses and the squared strength are exact
    (integers below 2^24), so the reference's ``gA == gF`` test is done exactly on the squared
    strengths; the strength, the angle and everything computed from them carry float32's relative
    rounding (1e-7), far below the parity tolerance. The strength is that of ``scale * img``.

    The orientation is stored negated, ``atan(dy / dx)`` with ``-pi/2`` where ``dx = 0``: the
    reference's ``atan(Sy / Sx)`` with ``Sx = -dx``, ``Sy = dy`` (``conv2`` flips the kernels),
    and ``pi/2`` where ``Sx = 0``. Only differences of orientations are used, whose magnitude
    the common sign does not change.
    """
    dx, dy = sobel(img, "zero", np.float32)
    g_sq = dx * dx
    g_sq += dy * dy
    g = np.sqrt(g_sq)
    if scale != 1.0:
        g *= np.float32(scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.divide(dy, dx, out=dy)
    np.arctan(a, out=a)
    np.copyto(a, np.float32(-math.pi / 2), where=dx == 0)
    return g_sq, g, a


def qabf_edges_unit(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strength (twice) and orientation of ``img / 255`` as MATLAB's ``conv2(img, h, 'same')`` computes them in double.

    Tang's evaluator feeds Qabf ``im2double`` images (k / 255). Their Sobel responses are sums of
    inexact numbers, so they depend on the order of the additions, and two of Qabf's tests are
    exact comparisons of them: ``Sx == 0`` (orientation ``pi/2``; a response that is 0 in exact
    arithmetic but rounds to +-1e-17 gives ``atan(Sy / Sx) = +-pi/2`` instead, and an opposite
    sign turns the orientation term from 1 into -1) and ``gA == gF`` (the strength term set to
    gF, about 0.01 on this range, instead of 1). Both are reproduced by adding the taps in
    ``conv2``'s order: the kernel walked column by column, each tap's product added to the
    running sum (``out(i, j) += h(u, v) * img(i + 1 - u, j + 1 - v)``, zero taps skipped). This
    gives Tang's published Qabf to 2e-12; exact integer responses on 0..255 miss it by up to
    1.5e-3 on the parity rows. Float64; the squared strength is not returned, ties are tested on
    the strength itself as the reference does.
    """
    x = np.asarray(img, dtype=np.float64) / 255.0
    h, w = x.shape
    p = np.pad(x, 1)
    p2 = p + p  # the taps of weight 2 (doubling is exact)

    def tap(q: np.ndarray, u: int, v: int) -> np.ndarray:  # q(i + 1 - u, j + 1 - v) for kernel tap (u, v)
        return q[2 - u : 2 - u + h, 2 - v : 2 - v + w]

    # Sx: h3 = [-1 0 1; -2 0 2; -1 0 1], taps (0,0) (1,0) (2,0) (0,2) (1,2) (2,2).
    sx = np.negative(tap(p, 0, 0))
    sx -= tap(p2, 1, 0)
    sx -= tap(p, 2, 0)
    sx += tap(p, 0, 2)
    sx += tap(p2, 1, 2)
    sx += tap(p, 2, 2)
    # Sy: h1 = [1 2 1; 0 0 0; -1 -2 -1], taps (0,0) (2,0) (0,1) (2,1) (0,2) (2,2).
    sy = np.subtract(tap(p, 0, 0), tap(p, 2, 0))
    sy += tap(p2, 0, 1)
    sy -= tap(p2, 2, 1)
    sy += tap(p, 0, 2)
    sy -= tap(p, 2, 2)
    g = np.multiply(sx, sx)
    g += np.multiply(sy, sy, out=p2[:h, :w])
    np.sqrt(g, out=g)
    flat = sx == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.divide(sy, sx, out=sy)
    np.arctan(a, out=a)
    np.copyto(a, math.pi / 2, where=flat)
    return g, g, a


# Qabf's per-pixel preservation is Tg Ta / ((1 + e^{kg (G - Dg)}) (1 + e^{ka (Aa - Da)})); the
# constant Tg Ta multiplies the final ratio instead of every pixel, and the orientation term
# 1 - |aX - aF| / (pi/2) is folded into its exponent: ka (1 - d / (pi/2) - Da) = ka (1 - Da) - (ka / (pi/2)) d.
_QABF_G = (_QABF["kg"], -_QABF["kg"] * _QABF["Dg"])
_QABF_A = (-_QABF["ka"] / (math.pi / 2), _QABF["ka"] * (1.0 - _QABF["Da"]))


def _qabf_weighted(src: tuple, fused: tuple) -> float:
    """``sum(g_X / ((1 + e^{kg (G - Dg)}) (1 + e^{ka (Aa - Da)})))``: edge preservation of X in F weighted by g_X.

    In float64 from the float32 edge maps (the logistics' constants then hold to 1e-16).
    """
    g_sq_src, g_src, a_src = src
    g_sq_f, g_f, a_f = fused
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        strength = np.minimum(g_src, g_f, dtype=np.float64)
        strength /= np.maximum(g_src, g_f)
        np.copyto(strength, g_f, where=g_sq_src == g_sq_f)  # the references' quirk: gF itself where equal
        strength *= _QABF_G[0]
        strength += _QABF_G[1]
        np.exp(strength, out=strength)
        strength += 1.0
        angle = np.subtract(a_src, a_f, dtype=np.float64)
        np.abs(angle, out=angle)
        angle *= _QABF_A[0]
        angle += _QABF_A[1]
        np.exp(angle, out=angle)
        angle += 1.0
        strength *= angle
        np.divide(g_src, strength, out=strength)
    return float(np.sum(strength))


def qabf(fused, *, ir, vis, convention: str = DEFAULT_CONVENTION) -> float:
    """Qabf: gradient-based edge transfer of Xydeas and Petrovic (2000).

    Sobel responses with zero padding give strength ``g`` and orientation ``atan(Sy / Sx)``
    (``pi / 2`` where ``Sx = 0``) per pixel; the preservation of source X in F is
    ``Tg / (1 + exp(kg (G - Dg))) * Ta / (1 + exp(ka (A - Da)))`` with ``G = min(gX/gF, gF/gX)``
    and ``A = 1 - |aX - aF| / (pi / 2)``, and ``Q = sum(QAF gA + QBF gB) / sum(gA + gB)``.

    Where ``gX == gF`` the references set ``G = gF`` (not 1). That makes the value depend on the
    range the reference fed in, so ``convention`` selects it: ``vifb`` 0..65025, ``cddfuse``
    0..255, ``tang`` 0..1. Everything else is scale-free, except that on 0..1 the Sobel responses
    are rounded sums, so which pixels count as ``Sx == 0`` or ``gX == gF`` depends on the order
    of the additions; ``tang`` adds them in MATLAB ``conv2``'s order (see ``docs/metrics.md``).

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        convention: ``vifb``, ``cddfuse`` or ``tang``.

    Returns:
        Qabf in [0, 1) (about 0.975 when F = A = B with edges). Higher is better; NaN when no
        source has an edge.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return qabf_planes(a, b, f, convention)


def qabf_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str, memo: Memo | None = None) -> float:
    """Qabf of prepared planes: a visible, b infrared, f fused, each (H, W) float64 in 0..255."""
    if convention == "tang":
        edges_a, edges_b, edges_f = (cached(memo, ("qabf", "unit"), x, qabf_edges_unit) for x in (a, b, f))
    else:
        scale = _QABF_SCALE[convention]
        edges_a, edges_b, edges_f = (
            cached(memo, ("qabf", scale), x, lambda im: _qabf_edges(im, scale)) for x in (a, b, f)
        )
    num = _qabf_weighted(edges_a, edges_f) + _qabf_weighted(edges_b, edges_f)
    den = float(np.sum(edges_a[1], dtype=np.float64)) + float(np.sum(edges_b[1], dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(num) * (_QABF["Tg"] * _QABF["Ta"]) / np.float64(den))


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


def _nabf_features(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Sobel responses with mirror padding (float32), their squared strength, the weights and their sum.

    On integer images the Sobel responses and the squared strength are exact in float32, so
    the comparisons of strengths (the artefact mask, the weight threshold) are exact; the
    weights ``g^1.5`` carry float32's relative rounding, and the per-pixel preservation is
    computed in float64 from the exact responses (see :func:`_nabf_loss`).
    """
    dx, dy = sobel(img, "mirror", np.float32)
    g_sq = dy * dy
    g_sq += dx * dx
    # Strength g = sqrt(g_sq) / 8 (Sobel/8); weight g^1.5 where g >= Td, i.e. where
    # g_sq >= (8 Td)^2 (exactly: the square root is correctly rounded and monotone), else wt_min.
    g = np.sqrt(g_sq)
    g *= np.float32(0.125)
    w = np.sqrt(g)
    w *= g
    np.copyto(w, np.float32(_NABF["wt_min"]), where=g_sq < (8.0 * _NABF["Td"]) ** 2)
    return dx, dy, g_sq, w, float(np.sum(w, dtype=np.float64))


def _logistic(x: np.ndarray, top: float, k: float, centre: float) -> np.ndarray:
    """``top / (1 + exp(k (x - centre)))``, computed in place in ``x``."""
    x -= centre
    x *= k
    np.exp(x, out=x)
    x += 1.0
    np.divide(top, x, out=x)
    return x


def _nabf_orientation(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``atan(gv / gh)`` in float64, 0 where both responses are 0 (gv = dx / 8, gh = dy / 8; the 8 cancels)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.divide(dx, dy, dtype=np.float64)
    np.arctan(a, out=a)  # gh == 0 gives +-pi/2, like MATLAB's atan(+-Inf)
    np.copyto(a, 0.0, where=(dx == 0) & (dy == 0))
    return a


def _nabf_loss(
    g_sq_src: np.ndarray, a_src: np.ndarray, w_src: np.ndarray, g_sq_f: np.ndarray, a_f: np.ndarray
) -> float:
    """``sum((1 - Q^XF) w_X)`` over pixels where the fused edge is stronger than the source's (float64).

    There ``g_F > g_X >= 0``, so the smaller-over-larger strength ratio is ``g_X / g_F = sqrt(g_sq_X / g_sq_F)``.
    """
    c = _NABF
    with np.errstate(over="ignore"):
        ratio = np.divide(g_sq_src, g_sq_f, dtype=np.float64)
        np.sqrt(ratio, out=ratio)
        orientation = a_src - a_f
        np.abs(orientation, out=orientation)
        orientation -= math.pi / 2
        np.abs(orientation, out=orientation)
        orientation *= 2.0 / math.pi
        q = _logistic(ratio, c["Nrg"], -c["kg"], c["sg"])
        q *= _logistic(orientation, c["Nra"], -c["ka"], c["sa"])
    np.sqrt(q, out=q)
    np.subtract(1.0, q, out=q)
    q *= w_src
    return float(np.sum(q))


def nabf(fused, *, ir, vis) -> float:
    """Nabf: fusion artefacts, Petrovic's measure as modified by Shreyamsha Kumar (SIViP 2013).

    With Sobel/8 edges (mirror padding), per-pixel preservation ``Q^{XF} = sqrt(Q_g Q_a)``
    (``Q_g = 0.9999 / (1 + exp(-19 (G - 0.5)))``, ``Q_a = 0.9995 / (1 + exp(-22 (A - 0.5)))``) and
    weights ``w_X = g_X^1.5`` where ``g_X >= 2`` else 0.001, Nabf is
    ``sum(N (1 - QAF) wA + N (1 - QBF) wB) / sum(wA + wB)`` where ``N`` marks pixels whose fused
    edge is stronger than both sources' (edges that came from nowhere). Thresholds assume 0..255
    images; this is the published definition, used by every convention.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.

    Returns:
        Nabf in [0, 1]. Lower is better; 0 when F adds no edge.
    """
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=2)
    return nabf_planes(a, b, f)


def nabf_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    """Nabf of prepared planes: a visible, b infrared, f fused, each (H, W) float64 in 0..255."""
    dx_a, dy_a, g_sq_a, w_a, sum_a = cached(memo, ("nabf",), a, _nabf_features)
    dx_b, dy_b, g_sq_b, w_b, sum_b = cached(memo, ("nabf",), b, _nabf_features)
    dx_f, dy_f, g_sq_f, _, _ = cached(memo, ("nabf",), f, _nabf_features)
    # Only pixels whose fused edge is stronger than both sources' count (exact comparisons of
    # the squared strengths); they are gathered first and the per-pixel terms computed there only.
    artefact = g_sq_f > g_sq_a
    artefact &= g_sq_f > g_sq_b
    idx = np.flatnonzero(artefact)

    def take(x: np.ndarray) -> np.ndarray:
        return x.ravel().take(idx)

    g_sq_f = take(g_sq_f)
    a_f = _nabf_orientation(take(dx_f), take(dy_f))
    num = _nabf_loss(take(g_sq_a), _nabf_orientation(take(dx_a), take(dy_a)), take(w_a), g_sq_f, a_f)
    num += _nabf_loss(take(g_sq_b), _nabf_orientation(take(dx_b), take(dy_b)), take(w_b), g_sq_f, a_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(num) / np.float64(sum_a + sum_b))
