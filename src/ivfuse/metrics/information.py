"""Information-theoretic metrics: EN (entropy), MI (mutual information), CE (cross entropy).

All functions take single-channel float64 arrays in 0..255 (the evaluator's gray or
per-channel planes) and use 256 gray-level histograms.
"""

from __future__ import annotations

import numpy as np

from ._common import as_plane, as_planes
from .conventions import DEFAULT_CONVENTION, check_convention

__all__ = ["entropy", "mutual_information", "mutual_information_pair", "cross_entropy"]

_LEVELS = 256


def _levels_floor(img: np.ndarray) -> np.ndarray:
    """Gray levels ``floor(x)`` clipped to 0..255 (VIFB's histogram binning)."""
    return np.clip(np.floor(img), 0, _LEVELS - 1).astype(np.intp)


def _levels_round(img: np.ndarray) -> np.ndarray:
    """Gray levels ``uint8(round(x))`` with NumPy's round-half-to-even, saturated to 0..255 (CDDFuse)."""
    return np.clip(np.round(img), 0, _LEVELS - 1).astype(np.intp)


def _levels_matlab(img: np.ndarray) -> np.ndarray:
    """Gray levels of MATLAB ``uint8(x)``: round half away from zero, saturated (Tang)."""
    return np.clip(np.floor(img + 0.5), 0, _LEVELS - 1).astype(np.intp)


def _levels(img: np.ndarray, convention: str) -> np.ndarray:
    return {"vifb": _levels_floor, "cddfuse": _levels_round, "tang": _levels_matlab}[convention](img)


def _entropy_of_counts(counts: np.ndarray, log=np.log2) -> float:
    """Shannon entropy of a histogram given as counts (empty bins ignored)."""
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * log(p)))


def entropy(img, convention: str = DEFAULT_CONVENTION) -> float:
    """EN: Shannon entropy (bits) of the 256-bin gray-level histogram.

    Args:
        img: (H, W) float64 in 0..255.
        convention: selects the binning: ``vifb`` bins ``floor(x)``, ``cddfuse`` ``round(x)``
            (half to even), ``tang`` MATLAB ``uint8(x)`` (half away from zero). All three agree on
            integer images.

    Returns:
        Entropy in bits, in [0, 8]. Higher is better.

    >>> entropy(np.zeros((4, 4)))
    0.0
    """
    convention = check_convention(convention)
    levels = _levels(as_plane(img, "img", 1), convention)
    return _entropy_of_counts(np.bincount(levels.ravel(), minlength=_LEVELS))


def _joint_counts(la: np.ndarray, lb: np.ndarray, nb: int) -> np.ndarray:
    return np.bincount((la * nb + lb).ravel())


def _mi_vifb(x: np.ndarray, f: np.ndarray) -> float:
    """VIFB: min-max normalise each image, ``int16(255 x)`` levels, natural log."""

    def normalised_levels(img: np.ndarray) -> np.ndarray:
        lo, hi = img.min(), img.max()
        if hi == lo:
            return np.zeros(img.shape, dtype=np.intp)
        # int16() rounds half away from zero; the normalised values are non-negative.
        return np.floor((img - lo) / (hi - lo) * 255.0 + 0.5).astype(np.intp)

    la, lf = normalised_levels(x), normalised_levels(f)
    joint = _joint_counts(la, lf, _LEVELS)
    ha = _entropy_of_counts(np.bincount(la.ravel(), minlength=_LEVELS), np.log)
    hf = _entropy_of_counts(np.bincount(lf.ravel(), minlength=_LEVELS), np.log)
    return ha + hf - _entropy_of_counts(joint, np.log)


def _labels(img: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer labels of the distinct pixel values and their count."""
    flat = img.ravel()
    if np.all(flat == np.floor(flat)) and flat.min() >= 0 and flat.max() < 65536:
        return flat.astype(np.intp), int(flat.max()) + 1
    _, inverse = np.unique(flat, return_inverse=True)
    return inverse.astype(np.intp), int(inverse.max()) + 1


def _mi_cddfuse(x: np.ndarray, f: np.ndarray) -> float:
    """CDDFuse: scikit-learn ``mutual_info_score`` of the raw pixel values used as labels (nats)."""
    lx, nx = _labels(x)
    lf, nf = _labels(f)
    joint = _joint_counts(lx, lf, nf)
    hx = _entropy_of_counts(np.bincount(lx, minlength=nx), np.log)
    hf = _entropy_of_counts(np.bincount(lf, minlength=nf), np.log)
    # scikit-learn clips tiny negative rounding results to 0.
    return max(0.0, hx + hf - _entropy_of_counts(joint, np.log))


def _mi_tang(x: np.ndarray, f: np.ndarray) -> float:
    """Tang: bits; marginals from MATLAB ``entropy``, joint histogram indexed by ``uint8(x) + 1``.

    ``uint8`` addition saturates, so levels 254 and 255 share a bin in the joint histogram only.
    """
    lx, lf = _levels_matlab(x), _levels_matlab(f)
    hx = _entropy_of_counts(np.bincount(lx.ravel(), minlength=_LEVELS))
    hf = _entropy_of_counts(np.bincount(lf.ravel(), minlength=_LEVELS))
    joint = _joint_counts(np.minimum(lx, _LEVELS - 2), np.minimum(lf, _LEVELS - 2), _LEVELS)
    return hx + hf - _entropy_of_counts(joint)


_MI_PAIR = {"vifb": _mi_vifb, "cddfuse": _mi_cddfuse, "tang": _mi_tang}


def mutual_information_pair(x, f, convention: str = DEFAULT_CONVENTION) -> float:
    """Mutual information between one source image and the fused image.

    Args:
        x: (H, W) float64 source in 0..255.
        f: (H, W) float64 fused image in 0..255.
        convention: ``vifb`` (natural log, each image min-max normalised to 256 levels),
            ``cddfuse`` (natural log, raw values as labels) or ``tang`` (bits, uint8 levels).

    Returns:
        MI(x, f) >= 0 (nats or bits, see above).
    """
    convention = check_convention(convention)
    x, f = as_planes((x, "x"), (f, "f"), min_size=1)
    return _MI_PAIR[convention](x, f)


def mutual_information(a, b, f, convention: str = DEFAULT_CONVENTION) -> float:
    """MI: ``MI(a, f) + MI(b, f)``, symmetric in the two sources.

    Args:
        a: (H, W) float64 source (visible or infrared) in 0..255.
        b: (H, W) float64 other source in 0..255.
        f: (H, W) float64 fused image in 0..255.
        convention: see :func:`mutual_information_pair`.

    Returns:
        The sum of the two mutual informations. Higher is better.
    """
    convention = check_convention(convention)
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    return _MI_PAIR[convention](a, f) + _MI_PAIR[convention](b, f)


def _cross_entropy_pair(x: np.ndarray, f: np.ndarray) -> float:
    px = np.bincount(_levels_floor(x).ravel(), minlength=_LEVELS) / x.size
    pf = np.bincount(_levels_floor(f).ravel(), minlength=_LEVELS) / f.size
    both = (px > 0) & (pf > 0)
    return float(np.sum(px[both] * np.log2(px[both] / pf[both])))


def cross_entropy(a, b, f) -> float:
    """CE (VIFB): mean over the two sources of ``sum_k p_x(k) log2(p_x(k) / p_f(k))``.

    Gray levels are ``floor(x)``; bins empty in either histogram are skipped, as in VIFB.

    Args:
        a: (H, W) float64 source in 0..255.
        b: (H, W) float64 other source in 0..255.
        f: (H, W) float64 fused image in 0..255.

    Returns:
        Cross entropy in bits. Lower is better; 0 when ``f`` has the histogram of both sources.
    """
    a, b, f = as_planes((a, "a"), (b, "b"), (f, "f"), min_size=1)
    return (_cross_entropy_pair(a, f) + _cross_entropy_pair(b, f)) / 2.0
