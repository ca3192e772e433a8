"""Perceptual metrics: VIF (pixel-domain VIFp), Qcb (Chen-Blum) and Qcv (Chen-Varshney).

All functions take single-channel float64 arrays in 0..255.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as _fft

from ._common import as_planes
from ._filters import block_sum, fft_filter, freqspace, matlab_gaussian_1d, separable_valid, sobel
from .conventions import DEFAULT_CONVENTION, check_convention

__all__ = ["vifp", "vif", "qcb", "qcv"]

_VIF_SIGMA_NSQ = 2.0
_VIF_EPS = 1e-10


def _vifp_terms(refs: list[np.ndarray], dist: np.ndarray) -> list[tuple[float, float]]:
    """Numerator and denominator sums of VIFp for each reference against one distorted image.

    Pixel-domain multi-scale VIF (Sheikh and Bovik): 4 scales, window ``N = 2^(5 - s) + 1`` with
    a MATLAB Gaussian of sigma ``N / 5``, 'valid' filtering, subsampling by 2 between scales.
    """
    sums = [[0.0, 0.0] for _ in refs]
    refs = list(refs)
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        win = matlab_gaussian_1d(n, n / 5.0)
        if scale > 1:
            refs = [separable_valid(r, win)[::2, ::2] for r in refs]
            dist = separable_valid(dist, win)[::2, ::2]
        if min(dist.shape) < n:
            continue  # MATLAB's 'valid' filtering gives an empty map: this scale adds nothing
        mu2 = separable_valid(dist, win)
        sigma2_sq = separable_valid(dist * dist, win) - mu2 * mu2
        np.maximum(sigma2_sq, 0.0, out=sigma2_sq)
        for k, ref in enumerate(refs):
            mu1 = separable_valid(ref, win)
            sigma1_sq = separable_valid(ref * ref, win) - mu1 * mu1
            sigma12 = separable_valid(ref * dist, win) - mu1 * mu2
            np.maximum(sigma1_sq, 0.0, out=sigma1_sq)
            g = sigma12 / (sigma1_sq + _VIF_EPS)
            sv_sq = sigma2_sq - g * sigma12
            flat_ref = sigma1_sq < _VIF_EPS
            g[flat_ref] = 0.0
            sv_sq[flat_ref] = sigma2_sq[flat_ref]
            sigma1_sq[flat_ref] = 0.0
            flat_dist = sigma2_sq < _VIF_EPS
            g[flat_dist] = 0.0
            sv_sq[flat_dist] = 0.0
            negative = g < 0
            sv_sq[negative] = sigma2_sq[negative]
            g[negative] = 0.0
            sv_sq[sv_sq <= _VIF_EPS] = _VIF_EPS
            sums[k][0] += float(np.sum(np.log10(1.0 + g * g * sigma1_sq / (sv_sq + _VIF_SIGMA_NSQ))))
            sums[k][1] += float(np.sum(np.log10(1.0 + sigma1_sq / _VIF_SIGMA_NSQ)))
    return [(num, den) for num, den in sums]


def vifp(ref, dist) -> float:
    """VIFp: pixel-domain visual information fidelity of ``dist`` with respect to ``ref``.

    Args:
        ref: (H, W) float64 reference (a source image) in 0..255.
        dist: (H, W) float64 distorted image (the fused image) in 0..255.

    Returns:
        VIFp >= 0 (1 when ``dist == ref``; can exceed 1 for contrast enhancement). NaN when the
        reference is flat at every scale.
    """
    ref, dist = as_planes((ref, "ref"), (dist, "dist"), min_size=1)
    ((num, den),) = _vifp_terms([ref], dist)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(num) / np.float64(den))


def vif(a, b, f, convention: str = DEFAULT_CONVENTION) -> float:
    """VIF as every IVIF reference reports it: ``VIFp(a, f) + VIFp(b, f)`` on 0..255.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.
        convention: ``cddfuse`` replaces a NaN term (flat reference) by 1, as its evaluator does;
            ``vifb`` and ``tang`` keep NaN.

    Returns:
        Sum of the two VIFp values. Higher is better.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    total = 0.0
    for num, den in _vifp_terms([a, b], f):
        with np.errstate(invalid="ignore", divide="ignore"):
            value = float(np.float64(num) / np.float64(den))
        if convention == "cddfuse" and math.isnan(value):
            value = 1.0
        total += value
    return total


def _normalize_255(img: np.ndarray) -> np.ndarray:
    """Min-max normalise to 0..255 and round half away from zero (Z. Liu's ``normalize1``).

    An all-zero image stays zero; any other constant image also maps to zeros (the reference
    would divide by zero).
    """
    lo, hi = img.min(), img.max()
    if hi == lo:
        return np.zeros_like(img)
    return np.floor((img - lo) / (hi - lo) * 255.0 + 0.5)


# Qcb (Chen and Blum 2009) constants.
_QCB_F0, _QCB_F1, _QCB_A = 15.3870, 1.3456, 0.7622
_QCB_P, _QCB_Q, _QCB_Z = 3.0, 2.0, 1e-4
_QCB_HALF = 15  # the contrast Gaussians are 31x31


def _qcb_kernel_spectra(shape: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Spectra of the two unnormalised 31x31 Gaussians (sigma 2 and 4) on a zero-padded grid."""
    h, w = shape
    padded = (_fft.next_fast_len(h + 2 * _QCB_HALF, True), _fft.next_fast_len(w + 2 * _QCB_HALF, True))
    x = np.arange(-_QCB_HALF, _QCB_HALF + 1, dtype=np.float64)
    spectra = []
    for sigma in (2.0, 4.0):
        g = np.exp(-(x * x) / (2.0 * sigma * sigma))
        kernel = np.outer(g, g) / (2.0 * math.pi * sigma * sigma)
        # Place the kernel centre at the origin of the periodic grid (wrap negative offsets).
        k = np.zeros(padded, dtype=np.float64)
        k[: _QCB_HALF + 1, : _QCB_HALF + 1] = kernel[_QCB_HALF:, _QCB_HALF:]
        k[: _QCB_HALF + 1, -_QCB_HALF:] = kernel[_QCB_HALF:, :_QCB_HALF]
        k[-_QCB_HALF:, : _QCB_HALF + 1] = kernel[:_QCB_HALF, _QCB_HALF:]
        k[-_QCB_HALF:, -_QCB_HALF:] = kernel[:_QCB_HALF, :_QCB_HALF]
        spectra.append(_fft.rfft2(k, workers=1))
    return padded, spectra[0], spectra[1]


def _qcb_contrast(img: np.ndarray, padded: tuple[int, int], g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
    """``|filter2(G1, img, 'same') / filter2(G2, img, 'same') - 1|`` via zero-padded FFT convolution."""
    h, w = img.shape
    spec = _fft.rfft2(img, s=padded, workers=1)
    num = _fft.irfft2(spec * g1, s=padded, workers=1)[:h, :w]
    den = _fft.irfft2(spec * g2, s=padded, workers=1)[:h, :w]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(num / den - 1.0)


def qcb(a, b, f) -> float:
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
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.

    Returns:
        Qcb in [0, 1]. Higher is better.
    """
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=2)
    h, w = f.shape
    u, v = freqspace((h, w))
    r = np.sqrt((u * (w / 30.0)) ** 2 + (v * (h / 30.0)) ** 2)
    csf = np.exp(-((r / _QCB_F0) ** 2)) - _QCB_A * np.exp(-((r / _QCB_F1) ** 2))
    padded, g1, g2 = _qcb_kernel_spectra((h, w))
    masked = []
    for img in (a, b, f):
        c = _qcb_contrast(fft_filter(_normalize_255(img), csf), padded, g1, g2)
        masked.append(c**_QCB_P / (c**_QCB_Q + _QCB_Z))
    c1, c2, cf = masked
    with np.errstate(divide="ignore", invalid="ignore"):
        q1f = np.where(c1 < cf, c1 / cf, cf / c1)
        q2f = np.where(c2 < cf, c2 / cf, cf / c2)
        s1, s2 = c1 * c1, c2 * c2
        saliency = s1 + s2
        q = (s1 * q1f + s2 * q2f) / saliency
    return float(np.mean(q))


# Qcv (Chen and Varshney 2007) constants.
_QCV_WINDOW = 16
_QCV_ALPHA = 5


def qcv(a, b, f) -> float:
    """Qcv: Chen-Varshney human-perception metric (Information Fusion 8, 2007), VIFB's variant.

    Each image is min-max normalised to 0..255 and rounded. The saliency of a 16x16 block is the
    sum of ``g^5`` over it, ``g`` the Sobel edge strength of the source (zero padding). The
    dissimilarity of a block is the mean of ``D^2`` over the 256 block pixels (partial blocks
    zero-padded), ``D`` the difference ``source - fused`` filtered with the Mannos-Sakrison CSF
    ``2.6 (0.0192 + 0.144 r) exp(-(0.144 r)^1.1)`` on the ``freqspace`` grid scaled by W/8, H/8.
    Qcv is the saliency-weighted mean block dissimilarity over both sources.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source.
        f: (H, W) float64 fused image.

    Returns:
        Qcv >= 0 (typically hundreds to thousands). Lower is better; 0 when F = A = B.
    """
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=2)
    h, w = f.shape
    na, nb, nf = _normalize_255(a), _normalize_255(b), _normalize_255(f)
    u, v = freqspace((h, w))
    r = np.sqrt((u * (w / 8.0)) ** 2 + (v * (h / 8.0)) ** 2)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    num = 0.0
    den = 0.0
    for src in (na, nb):
        dx, dy = sobel(src, "zero")
        saliency = block_sum(np.sqrt(dx * dx + dy * dy) ** _QCV_ALPHA, _QCV_WINDOW)
        diff = fft_filter(src - nf, csf)
        dissimilarity = block_sum(diff * diff, _QCV_WINDOW) / (_QCV_WINDOW * _QCV_WINDOW)
        num += float(np.sum(saliency * dissimilarity))
        den += float(np.sum(saliency))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(num) / np.float64(den))
