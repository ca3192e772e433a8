"""Perceptual metrics: VIF (pixel-domain VIFp), Qcb (Chen-Blum) and Qcv (Chen-Varshney).

All functions take single-channel float64 arrays in 0..255.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import fft as _fft

from ._common import as_planes, normalised_255
from ._filters import (
    block_sum,
    freqspace,
    matlab_gaussian_1d,
    separable_valid,
    separable_valid_decimate,
    sobel,
)
from ._memo import Memo, cached
from .conventions import DEFAULT_CONVENTION, check_convention

__all__ = ["qcb", "qcv", "vif", "vifp"]

_VIF_SIGMA_NSQ = 2.0
_VIF_EPS = 1e-10
# Window of scale s = 1..4: N = 2^(5 - s) + 1, MATLAB Gaussian of sigma N / 5.
_VIF_WINDOWS = [matlab_gaussian_1d(2 ** (5 - s) + 1, (2 ** (5 - s) + 1) / 5.0) for s in range(1, 5)]


def _vif_pyramid(img: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per-image VIFp features, one ``(level, local mean, local variance clamped at 0)`` per scale.

    Level s > 1 is level s - 1 filtered 'valid' with the window of scale s and subsampled by 2;
    scales whose level is smaller than the window contribute nothing (MATLAB's empty 'valid'
    result).
    """
    features = []
    level = img
    for scale, win in enumerate(_VIF_WINDOWS, start=1):
        if scale > 1:
            if min(level.shape) < len(win):
                break
            level = separable_valid_decimate(level, win)
        if min(level.shape) < len(win):
            break
        mu = separable_valid(level, win)
        var = separable_valid(level * level, win)
        var -= mu * mu
        np.maximum(var, 0.0, out=var)
        features.append((level, mu, var))
    return features


def _vif_reference(img: np.ndarray, memo: Memo | None = None) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Per-scale features of an image used as the reference (a source), after :func:`_vif_pyramid`'s.

    Per scale: the variance plus eps, the ratio ``var / (var + eps)`` with 0 at flat pixels
    (variance < eps) and the denominator term ``sum log10(1 + var / sigma_nsq)`` with flat
    pixels counted as 0.
    """
    features = []
    for _, _, var in cached(memo, ("vif",), img, _vif_pyramid):
        flat = var < _VIF_EPS
        var_eps = var + _VIF_EPS
        ratio = var / var_eps
        ratio[flat] = 0.0  # the flat-reference case: g = 0
        terms = var * (1.0 / _VIF_SIGMA_NSQ)
        terms[flat] = 0.0
        den = float(np.sum(np.log1p(terms, out=terms))) / _LN10
        features.append((var_eps, ratio, den))
    return features


_LN10 = math.log(10.0)


def _vifp_terms(refs: list[np.ndarray], dist: np.ndarray, memo: Memo | None = None) -> list[tuple[float, float]]:
    """Numerator and denominator sums of VIFp for each reference against one distorted image.

    Pixel-domain multi-scale VIF (Sheikh and Bovik): 4 scales, window ``N = 2^(5 - s) + 1`` with
    a MATLAB Gaussian of sigma ``N / 5``, 'valid' filtering, subsampling by 2 between scales.
    Per pixel: ``g = sigma12 / (sigma1^2 + eps)``, ``sv^2 = sigma2^2 - g sigma12``, with the
    reference's special cases (flat reference: g = 0, sv^2 = sigma2^2; flat distorted image:
    g = 0, sv^2 = 0; g < 0: g = 0, sv^2 = sigma2^2; sv^2 >= eps), and the numerator sums
    ``log10(1 + g^2 sigma1^2 / (sv^2 + sigma_nsq))``.

    Every special case sets g = 0, and a pixel with g = 0 adds log10(1) = 0 whatever sv^2 is:
    for g < 0 that is done by clamping sigma12 at 0, for a flat reference by the zero in the
    reference's ``var / (var + eps)`` factor. A flat distorted image needs no mask: there
    ``g^2 sigma1^2 <= sigma12^2 / sigma1^2 <= sigma2^2 < eps`` (Cauchy-Schwarz, up to
    rounding), so its term is below 3e-11, nothing against sums of order 1e4. A flat reference
    still gives exactly 0 / 0 = NaN.
    """
    dist_pyr = cached(memo, ("vif",), dist, _vif_pyramid)
    refs = [
        (
            cached(memo, ("vif",), ref, _vif_pyramid),
            cached(memo, ("vif-ref",), ref, lambda im: _vif_reference(im, memo)),
        )
        for ref in refs
    ]
    terms = [[0.0, 0.0] for _ in refs]
    for scale, (win, (dist_l, mu2, var2)) in enumerate(zip(_VIF_WINDOWS, dist_pyr)):
        for i, (pyr, ref_features) in enumerate(refs):
            ref_l, mu1, _ = pyr[scale]
            var1_eps, ratio1, den1 = ref_features[scale]
            if den1 == 0.0:  # flat reference at this scale: every term is 0
                continue
            cov = separable_valid(ref_l * dist_l, win)
            prod = mu1 * mu2
            cov -= prod
            np.maximum(cov, 0.0, out=cov)
            cov *= cov
            cov /= var1_eps  # g sigma12
            sv_sq = np.subtract(var2, cov, out=prod)
            np.maximum(sv_sq, _VIF_EPS, out=sv_sq)
            sv_sq += _VIF_SIGMA_NSQ
            cov *= ratio1  # g^2 sigma1^2 = g sigma12 * sigma1^2 / (sigma1^2 + eps)
            cov /= sv_sq
            np.log1p(cov, out=cov)
            terms[i][0] += float(np.sum(cov)) / _LN10
            terms[i][1] += den1
    return [(num, den) for num, den in terms]


def vifp(fused, *, source) -> float:
    """VIFp: pixel-domain visual information fidelity of the fused image with respect to one source.

    Args:
        fused: (H, W) float64 fused image (the distorted image of VIF) in 0..255.
        source: (H, W) float64 source image (the reference of VIF) in 0..255, keyword-only.

    Returns:
        VIFp >= 0 (1 when ``fused == source``; can exceed 1 for contrast enhancement). NaN when the
        source is flat at every scale.
    """
    dist, ref = as_planes((fused, "fused"), (source, "source"), min_size=1)
    ((num, den),) = _vifp_terms([ref], dist)
    return _ratio(num, den)


def _ratio(num: float, den: float) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(num) / np.float64(den))


def vif(fused, *, ir, vis, convention: str = DEFAULT_CONVENTION) -> float:
    """VIF as every IVIF reference reports it: ``VIFp(fused, vis) + VIFp(fused, ir)`` on 0..255.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        convention: ``cddfuse`` replaces a NaN term (flat reference) by 1, as its evaluator does;
            ``vifb`` and ``tang`` keep NaN.

    Returns:
        Sum of the two VIFp values. Higher is better.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return vif_planes(a, b, f, convention)


def vif_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str, memo: Memo | None = None) -> float:
    """VIFp(a, f) + VIFp(b, f) of prepared (H, W) float64 planes in 0..255 (a visible, b infrared)."""
    total = 0.0
    for num, den in _vifp_terms([a, b], f, memo):
        value = _ratio(num, den)
        if convention == "cddfuse" and math.isnan(value):
            value = 1.0
        total += value
    return total


# Qcb (Chen and Blum 2009) constants.
_QCB_F0, _QCB_F1, _QCB_A = 15.3870, 1.3456, 0.7622
_QCB_Z = 1e-4  # masked contrast C^p / (C^q + Z) with p = 3, q = 2
_QCB_HALF = 15  # the contrast Gaussians are 31x31


@functools.lru_cache(maxsize=4)
def _qcb_csf(shape: tuple[int, int]) -> np.ndarray:
    """The DoG CSF response for ``shape`` in ``rfft2`` layout.

    The CSF depends on the radial frequency only, so filtering with it through a real FFT gives
    the real part of MATLAB's ``ifft2(ifftshift(fftshift(fft2(I)) .* Sd))``.
    """
    h, w = shape
    u, v = freqspace((h, w))
    r = np.sqrt((u * (w / 30.0)) ** 2 + (v * (h / 30.0)) ** 2)
    csf = np.exp(-((r / _QCB_F0) ** 2)) - _QCB_A * np.exp(-((r / _QCB_F1) ** 2))
    return np.ascontiguousarray(np.fft.ifftshift(csf)[:, : w // 2 + 1])  # rfft2 layout of the centred response


def _qcb_gaussian_1d(sigma: float) -> np.ndarray:
    """1-D factor of the unnormalised 31x31 Gaussian ``exp(-(x^2 + y^2) / (2 sigma^2)) / (2 pi sigma^2)``."""
    x = np.arange(-_QCB_HALF, _QCB_HALF + 1, dtype=np.float64)
    return np.exp(-(x * x) / (2.0 * sigma * sigma)) / (math.sqrt(2.0 * math.pi) * sigma)


_QCB_G1 = _qcb_gaussian_1d(2.0)
_QCB_G2 = _qcb_gaussian_1d(4.0)


def _normalised_spectrum(img: np.ndarray, memo: Memo | None = None) -> np.ndarray:
    """``rfft2`` of the min-max normalised image, shared by Qcb and Qcv."""
    return cached(
        memo, ("normalised-spectrum",), img, lambda im: _fft.rfft2(normalised_255(im, memo), workers=1)
    )


def _qcb_masked_contrast(img: np.ndarray, memo: Memo | None = None) -> np.ndarray:
    """Per-image Qcb feature: masked local contrast ``C^3 / (C^2 + Z)`` of the CSF-filtered image.

    ``C = |G1 * I / G2 * I - 1|`` with zero-padded convolutions, computed as separable 'valid'
    filtering of the image padded with 15 zeros (the Gaussians are symmetric, so correlation
    and convolution agree; faster here than FFTs on a padded grid, and without their rounding
    noise).
    """
    h, w = img.shape
    spectrum = _normalised_spectrum(img, memo)
    filtered = _fft.irfft2(spectrum * _qcb_csf((h, w)), s=(h, w), workers=1, overwrite_x=True)
    filtered = np.pad(filtered, _QCB_HALF)
    num = separable_valid(filtered, _QCB_G1)
    den = separable_valid(filtered, _QCB_G2)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = num / den
    c -= 1.0
    np.abs(c, out=c)
    c2 = c * c
    masked = c2 * c
    c2 += _QCB_Z
    masked /= c2
    return masked


def qcb(fused, *, ir, vis) -> float:
    """Qcb: Chen-Blum perceptual quality (Image and Vision Computing 27, 2009), VIFB's variant.

    Each image is min-max normalised to 0..255 and rounded, filtered in the frequency domain
    with the DoG contrast-sensitivity function ``exp(-(r/f0)^2) - a exp(-(r/f1)^2)``
    (f0 = 15.3870, f1 = 1.3456, a = 0.7622, frequency grid of MATLAB ``freqspace`` scaled by
    W/30 and H/30); local contrast is ``|G1 * I / G2 * I - 1|`` with unnormalised 31x31
    Gaussians of sigma 2 and 4 (zero padding); the masked contrast ``C^3 / (C^2 + 1e-4)`` of
    each source is compared with the fused one (ratio of the smaller to the larger) and the two
    ratios are weighted by the squared masked contrasts of the sources. Qcb is the mean.

    Where a masked contrast is exactly 0 the MATLAB code yields NaN (Inf * 0); here the ratio is
    still taken smaller-over-larger, which is 0, or NaN when both are 0.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.

    Returns:
        Qcb in [0, 1]. Higher is better.
    """
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=2)
    return qcb_planes(a, b, f)


def qcb_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    """Qcb of prepared planes: a visible, b infrared, f fused, each (H, W) float64 in 0..255."""
    c1, c2, cf = (cached(memo, ("qcb",), x, lambda im: _qcb_masked_contrast(im, memo)) for x in (a, b, f))
    with np.errstate(divide="ignore", invalid="ignore"):
        # The smaller of the two over the larger (NaN when both are 0, as cf / c1 gives then).
        q1f = np.minimum(c1, cf)
        q1f /= np.maximum(c1, cf)
        q2f = np.minimum(c2, cf)
        q2f /= np.maximum(c2, cf)
        s1 = c1 * c1
        s2 = c2 * c2
        q1f *= s1
        q2f *= s2
        q1f += q2f
        s1 += s2
        q1f /= s1
    return float(np.mean(q1f))


# Qcv (Chen and Varshney 2007) constants.
_QCV_WINDOW = 16  # block side; saliency is the block sum of g^5


@functools.lru_cache(maxsize=4)
def _qcv_csf(shape: tuple[int, int]) -> np.ndarray:
    """Mannos-Sakrison CSF on the ``freqspace`` grid scaled by W/8 and H/8, laid out for ``rfft2``."""
    h, w = shape
    u, v = freqspace((h, w))
    r = np.sqrt((u * (w / 8.0)) ** 2 + (v * (h / 8.0)) ** 2)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    return np.ascontiguousarray(np.fft.ifftshift(csf)[:, : w // 2 + 1], dtype=np.float32)


def _qcv_saliency(img: np.ndarray, memo: Memo | None = None) -> np.ndarray:
    """Per-source Qcv feature: sum over 16x16 blocks of ``g^5``, ``g`` the zero-padded Sobel strength.

    float32 (exact Sobel responses and ``g^2`` on the normalised integer image; ``g^5`` to 1e-7)
    with block sums in float64: the saliencies are weights, to which that rounding does nothing.
    """
    dx, dy = sobel(normalised_255(img, memo), "zero", np.float32)
    g2 = dx * dx
    g2 += dy * dy
    g5 = g2 * g2
    g5 *= np.sqrt(g2)
    return block_sum(g5, _QCV_WINDOW)


def qcv(fused, *, ir, vis) -> float:
    """Qcv: Chen-Varshney human-perception metric (Information Fusion 8, 2007), VIFB's variant.

    Each image is min-max normalised to 0..255 and rounded. The saliency of a 16x16 block is the
    sum of ``g^5`` over it, ``g`` the Sobel edge strength of the source (zero padding). The
    dissimilarity of a block is the mean of ``D^2`` over the 256 block pixels (partial blocks
    zero-padded), ``D`` the difference ``source - fused`` filtered with the Mannos-Sakrison CSF
    ``2.6 (0.0192 + 0.144 r) exp(-(0.144 r)^1.1)`` on the ``freqspace`` grid scaled by W/8, H/8.
    Qcv is the saliency-weighted mean block dissimilarity over both sources.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.

    Returns:
        Qcv >= 0 (typically hundreds to thousands). Lower is better; 0 when F = A = B.
    """
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=2)
    return qcv_planes(a, b, f)


def qcv_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    """Qcv of prepared planes: a visible, b infrared, f fused, each (H, W) float64 in 0..255."""
    h, w = f.shape
    csf = _qcv_csf((h, w))
    spec_f = _normalised_spectrum(f, memo)
    num = 0.0
    den = 0.0
    for src in (a, b):
        spec = _normalised_spectrum(src, memo)
        saliency = cached(memo, ("qcv-saliency",), src, lambda im: _qcv_saliency(im, memo))
        # The CSF filter is linear: filter(src - f) = ifft((S_src - S_f) * csf). The difference of
        # the spectra is taken in double precision, the filtered spectrum rounded to single
        # precision and transformed back in single precision (three times faster): D^2 then
        # carries a relative error of about 1e-7 of its block sums, and there is no ratio of small
        # quantities downstream for it to grow in.
        diff_spec = np.subtract(spec, spec_f)
        filtered = np.multiply(diff_spec, csf, out=np.empty(diff_spec.shape, np.complex64), casting="same_kind")
        diff = _fft.irfft2(filtered, s=(h, w), workers=1, overwrite_x=True)
        diff *= diff
        dissimilarity = block_sum(diff, _QCV_WINDOW)
        num += float(np.sum(saliency * dissimilarity, dtype=np.float64)) / (_QCV_WINDOW * _QCV_WINDOW)
        den += float(np.sum(saliency))
    return _ratio(num, den)
