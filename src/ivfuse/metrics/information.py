"""Information-theoretic metrics: EN (entropy), MI (mutual information), CE (cross entropy).

All functions take single-channel float64 arrays in 0..255 (the evaluator's gray or
per-channel planes) and use 256 gray-level histograms.
"""

from __future__ import annotations

import numpy as np

from ._common import as_plane, as_planes, normalised_255
from ._memo import Memo, cached
from .conventions import DEFAULT_CONVENTION, check_convention

__all__ = ["cross_entropy", "entropy", "mutual_information", "mutual_information_pair"]

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
    return float(0.0 - np.sum(p * log(p)))  # 0.0 - x keeps +0.0 for a single level


def entropy(fused, *, convention: str = DEFAULT_CONVENTION) -> float:
    """EN: Shannon entropy (bits) of the 256-bin gray-level histogram.

    Args:
        fused: (H, W) float64 image in 0..255.
        convention: selects the binning: ``vifb`` bins ``floor(x)``, ``cddfuse`` ``round(x)``
            (half to even), ``tang`` MATLAB ``uint8(x)`` (half away from zero). All three agree on
            integer images.

    Returns:
        Entropy in bits, in [0, 8]. Higher is better.

    >>> entropy(np.zeros((4, 4)))
    0.0
    """
    convention = check_convention(convention)
    levels = _levels(as_plane(fused, "fused", 1), convention)
    return _entropy_of_counts(np.bincount(levels.ravel(), minlength=_LEVELS))


def _joint_entropy(la: np.ndarray, lb: np.ndarray, nb: int, log=np.log2) -> float:
    """Entropy of the joint histogram of two label images (labels of ``lb`` in 0..nb-1)."""
    joint = la * nb
    joint += lb
    return _entropy_of_counts(np.bincount(joint.ravel()), log)


def _vifb_mi_levels(img: np.ndarray, memo: Memo | None = None) -> tuple[np.ndarray, int, float]:
    """VIFB: min-max normalise, ``int16(255 x)`` levels (half away from zero); natural-log entropy.

    The levels are those of Qcb's and Qcv's normalisation (zeros for a constant image), shared through ``memo``.
    """
    levels = normalised_255(img, memo).astype(np.intp)
    return levels, _LEVELS, _entropy_of_counts(np.bincount(levels.ravel(), minlength=_LEVELS), np.log)


def _cddfuse_mi_levels(img: np.ndarray) -> tuple[np.ndarray, int, float]:
    """CDDFuse: distinct pixel values as labels (scikit-learn semantics); natural-log entropy."""
    flat = img.ravel()
    if np.all(flat == np.floor(flat)) and flat.min() >= 0 and flat.max() < 65536:
        labels = flat.astype(np.intp).reshape(img.shape)
    else:
        _, inverse = np.unique(flat, return_inverse=True)
        labels = inverse.astype(np.intp).reshape(img.shape)
    n = int(labels.max()) + 1
    return labels, n, _entropy_of_counts(np.bincount(labels.ravel(), minlength=n), np.log)


def _tang_mi_levels(img: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Tang: uint8 levels, MATLAB ``entropy`` in bits; the joint histogram is indexed by
    ``uint8(x) + 1``, which saturates, so levels 254 and 255 share a joint bin."""
    levels = _levels_matlab(img)
    h = _entropy_of_counts(np.bincount(levels.ravel(), minlength=_LEVELS))
    return np.minimum(levels, _LEVELS - 2), _LEVELS, h


_MI_LEVELS = {"vifb": _vifb_mi_levels, "cddfuse": _cddfuse_mi_levels, "tang": _tang_mi_levels}


def _mi_pair(x: np.ndarray, f: np.ndarray, convention: str, memo: Memo | None = None) -> float:
    if convention == "vifb":
        levels = lambda im: _vifb_mi_levels(im, memo)  # noqa: E731
    else:
        levels = _MI_LEVELS[convention]
    lx, _, hx = cached(memo, ("mi", convention), x, levels)
    lf, nf, hf = cached(memo, ("mi", convention), f, levels)
    log = np.log2 if convention == "tang" else np.log
    mi = hx + hf - _joint_entropy(lx, lf, nf, log)
    # scikit-learn clips tiny negative rounding results to 0.
    return max(0.0, mi) if convention == "cddfuse" else mi


def mutual_information_pair(fused, *, source, convention: str = DEFAULT_CONVENTION) -> float:
    """Mutual information between the fused image and one source image.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        source: (H, W) float64 source (infrared or visible) in 0..255, keyword-only.
        convention: ``vifb`` (natural log, each image min-max normalised to 256 levels),
            ``cddfuse`` (natural log, raw values as labels) or ``tang`` (bits, uint8 levels).

    Returns:
        MI(source, fused) >= 0 (nats or bits, see above).
    """
    convention = check_convention(convention)
    f, x = as_planes((fused, "fused"), (source, "source"), min_size=1)
    return _mi_pair(x, f, convention)


def mutual_information(fused, *, ir, vis, convention: str = DEFAULT_CONVENTION) -> float:
    """MI: ``MI(vis, fused) + MI(ir, fused)``, symmetric in the two sources.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.
        convention: see :func:`mutual_information_pair`.

    Returns:
        The sum of the two mutual informations. Higher is better.
    """
    convention = check_convention(convention)
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return mutual_information_planes(a, b, f, convention)


def mutual_information_planes(
    a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str, memo: Memo | None = None
) -> float:
    """MI(a, f) + MI(b, f) of prepared (H, W) float64 planes in 0..255 (a visible, b infrared)."""
    return _mi_pair(a, f, convention, memo) + _mi_pair(b, f, convention, memo)


def _histogram(img: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histogram of ``floor(x)`` levels."""
    return np.bincount(_levels_floor(img).ravel(), minlength=_LEVELS) / img.size


def _cross_entropy_pair(x: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    px = cached(memo, ("hist",), x, _histogram)
    pf = cached(memo, ("hist",), f, _histogram)
    both = (px > 0) & (pf > 0)
    return float(np.sum(px[both] * np.log2(px[both] / pf[both])))


def cross_entropy(fused, *, ir, vis) -> float:
    """CE (VIFB): mean over the two sources of ``sum_k p_x(k) log2(p_x(k) / p_f(k))``.

    Gray levels are ``floor(x)``; bins empty in either histogram are skipped, as in VIFB.

    Args:
        fused: (H, W) float64 fused image in 0..255.
        ir: (H, W) float64 infrared source in 0..255, keyword-only.
        vis: (H, W) float64 visible source in 0..255, keyword-only.

    Returns:
        Cross entropy in bits. Lower is better; 0 when ``fused`` has the histogram of both sources.
    """
    f, b, a = as_planes((fused, "fused"), (ir, "ir"), (vis, "vis"), min_size=1)
    return cross_entropy_planes(a, b, f)


def cross_entropy_planes(a: np.ndarray, b: np.ndarray, f: np.ndarray, memo: Memo | None = None) -> float:
    """Mean cross entropy of a and b against f, prepared (H, W) float64 planes in 0..255."""
    return (_cross_entropy_pair(a, f, memo) + _cross_entropy_pair(b, f, memo)) / 2.0
