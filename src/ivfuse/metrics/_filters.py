"""Low-level filtering helpers shared by the metric families (float64 numpy, vectorised).

Everything here works on 2-D float64 arrays. The names follow MATLAB's vocabulary because the
reference evaluators are MATLAB code: ``valid`` keeps only outputs whose window lies inside the
image, ``same`` keeps the input size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "block_sum",
    "freqspace",
    "matlab_gaussian_1d",
    "separable_valid",
    "separable_valid_decimate",
    "sobel",
]

# numpy.pad mode for each padding name used by the references.
_PAD_MODES = {"zero": "constant", "replicate": "edge", "mirror": "reflect"}


def matlab_gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """1-D factor of MATLAB's ``fspecial('gaussian', size, sigma)``.

    The 2-D kernel is the outer product of this vector with itself. MATLAB zeroes entries below
    ``eps * max`` of the 2-D kernel; for the sizes and sigmas used by the metrics (sigma >= size / 7.4)
    no entry is that small, so the kernel stays exactly separable.

    Args:
        size: odd window length.
        sigma: standard deviation in pixels.

    Returns:
        float64 vector of length ``size`` summing to 1.
    """
    r = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def separable_valid(img: np.ndarray, k_rows: np.ndarray, k_cols: np.ndarray | None = None) -> np.ndarray:
    """Correlate with the separable kernel ``outer(k_rows, k_cols)`` keeping only the valid part.

    Equivalent to MATLAB ``filter2(outer(k_rows, k_cols), img, 'valid')``.

    Args:
        img: (H, W) float64.
        k_rows: odd-length kernel applied along axis 0.
        k_cols: odd-length kernel along axis 1 (defaults to ``k_rows``).

    Returns:
        (H - len(k_rows) + 1, W - len(k_cols) + 1) float64.
    """
    if k_cols is None:
        k_cols = k_rows
    rr, rc = len(k_rows) // 2, len(k_cols) // 2
    h, w = img.shape
    tmp = ndimage.correlate1d(img, k_rows, axis=0, mode="constant")[rr : h - rr]
    out = ndimage.correlate1d(tmp, k_cols, axis=1, mode="constant")
    return out[:, rc : w - rc]


def separable_valid_decimate(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``separable_valid(img, k)[::2, ::2]`` without computing the discarded columns.

    Args:
        img: (H, W) float64.
        k: odd-length symmetric kernel applied along both axes.

    Returns:
        (ceil((H - n + 1) / 2), ceil((W - n + 1) / 2)) float64, ``n = len(k)``.
    """
    r = len(k) // 2
    h, w = img.shape
    tmp = ndimage.correlate1d(img, k, axis=0, mode="constant")[r : h - r : 2]
    out = ndimage.correlate1d(tmp, k, axis=1, mode="constant")
    return out[:, r : w - r : 2]


def sobel(img: np.ndarray, pad: str = "zero") -> tuple[np.ndarray, np.ndarray]:
    """Sobel responses by correlation, keeping the input size.

    ``dx`` is the correlation with ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` (right minus left) and
    ``dy`` the correlation with ``[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]`` (bottom minus top). The
    references use various flips of these kernels; a flip only changes signs, which each caller
    applies where it matters.

    Args:
        img: (H, W) float64.
        pad: ``"zero"``, ``"replicate"`` or ``"mirror"`` (reflection without repeating the edge).

    Returns:
        ``(dx, dy)``, each (H, W) float64; exact on integer-valued input.
    """
    p = np.pad(img, 1, mode=_PAD_MODES[pad])
    v = p[:-2] + 2.0 * p[1:-1] + p[2:]  # vertical smoothing, (H, W + 2)
    dx = v[:, 2:] - v[:, :-2]
    s = p[:, :-2] + 2.0 * p[:, 1:-1] + p[:, 2:]  # horizontal smoothing, (H + 2, W)
    dy = s[2:] - s[:-2]
    return dx, dy


def block_sum(img: np.ndarray, block: int) -> np.ndarray:
    """Sum over non-overlapping ``block x block`` tiles, partial tiles zero-padded (MATLAB ``blkproc``).

    Args:
        img: (H, W) float64.
        block: tile side in pixels.

    Returns:
        (ceil(H / block), ceil(W / block)) float64.
    """
    h, w = img.shape
    hb, wb = -(-h // block), -(-w // block)
    padded = np.zeros((hb * block, wb * block), dtype=np.float64)
    padded[:h, :w] = img
    return padded.reshape(hb, block, wb, block).sum(axis=(1, 3))


def freqspace(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Centred frequency grid of MATLAB ``freqspace(shape, 'meshgrid')``.

    Frequencies are normalised so that Nyquist is 1; index ``n // 2`` holds frequency 0 along each
    axis, matching ``fftshift``.

    Args:
        shape: (H, W).

    Returns:
        ``(u, v)``, each (H, W): ``u`` varies along columns, ``v`` along rows.
    """
    h, w = shape
    fu = (np.arange(w) - w // 2) * (2.0 / w)
    fv = (np.arange(h) - h // 2) * (2.0 / h)
    return np.meshgrid(fu, fv)
