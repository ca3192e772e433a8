"""Low-level filtering helpers shared by the metric families (numpy, vectorised).

Everything here works on 2-D float64 arrays; the banded filters and the Sobel responses also run
in float32 where a metric has been shown to keep its precision with it. The names follow MATLAB's
vocabulary because the reference evaluators are MATLAB code: ``valid`` keeps only outputs whose
window lies inside the image, ``same`` keeps the input size.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "block_sum",
    "correlate_valid",
    "freqspace",
    "matlab_gaussian_1d",
    "separable_valid",
    "separable_valid_decimate",
    "separable_valid_stack",
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


# Outputs per matrix product in the banded filtering below. Each product multiplies a
# (tile, (tile - 1) * step + n) band of kernel copies with the matching input strip: the band's
# zeros waste a factor (tile + n) / n of multiplications, which small tiles keep low, while each
# BLAS call must still do enough work. These were fastest on 640x480 for n = 7..31: 16 along
# axis 0, 24 for the transposed products along axis 1.
_TILE = 16
_TILE_T = 24


@functools.lru_cache(maxsize=64)
def _band(kernel: tuple[float, ...], step: int, tile: int, dtype: type = np.float64) -> np.ndarray:
    """``(tile, (tile - 1) * step + n)`` matrix whose row t holds ``kernel`` starting at column ``t * step``."""
    n = len(kernel)
    band = np.zeros((tile, (tile - 1) * step + n), dtype=dtype)
    rows = np.arange(tile)
    for i, c in enumerate(kernel):
        band[rows, rows * step + i] = c
    band.flags.writeable = False
    return band


def correlate_valid(img: np.ndarray, k: np.ndarray, axis: int, step: int = 1) -> np.ndarray:
    """1-D 'valid' correlation of a 2-D array with ``k`` along ``axis``, keeping every ``step``-th output.

    Output ``o`` along ``axis`` is ``sum_i k[i] img[o * step + i]``. Computed as matrix products of
    the input, strip by strip, with a banded matrix of kernel copies (BLAS; two to three times
    faster here than ``scipy.ndimage.correlate1d``, and no output that is thrown away is
    computed). Float64 throughout; the results differ from a direct sum by rounding only.

    Along axis 1 the products are formed transposed (``band @ strip.T``, which BLAS reads
    without copying), so that each writes whole rows: the result is then a Fortran-ordered
    (transposed) view, about a third faster than writing column strips of a C-ordered array.
    Elementwise arithmetic is as fast on it as long as the other operand has the same order,
    which holds for everything filtered this way.

    Args:
        img: (H, W) float64 or float32, any memory order (anything else is converted to float64).
        k: 1-D kernel of length n.
        axis: 0 (along columns, i.e. over rows) or 1 (along rows).
        step: output stride (2 filters and subsamples by 2 in one pass).

    Returns:
        array of the input's float type with ``(L - n) // step + 1`` entries along ``axis`` (0 if
        ``L < n``), ``L = img.shape[axis]``; C-ordered for axis 0, Fortran-ordered for axis 1.
    """
    img = np.asarray(img)
    if img.dtype != np.float32:
        img = np.asarray(img, dtype=np.float64)
    if axis == 1:
        return _correlate_rows(img.T, k, step, _TILE_T).T
    return _correlate_rows(img, k, step, _TILE)


def _correlate_rows(img: np.ndarray, k: np.ndarray, step: int, tile: int) -> np.ndarray:
    """:func:`correlate_valid` along axis 0, ``tile`` outputs per matrix product."""
    n = len(k)
    length = img.shape[0]
    m = (length - n) // step + 1 if length >= n else 0
    band = _band(tuple(float(c) for c in k), step, tile, img.dtype.type)
    out = np.empty((m, img.shape[1]), dtype=img.dtype)
    for j in range(0, m, tile):
        t = min(tile, m - j)
        span = (t - 1) * step + n
        start = j * step
        np.matmul(band[:t, :span], img[start : start + span], out=out[j : j + t])
    return out


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
    return correlate_valid(correlate_valid(img, k_rows, 0), k_cols, 1)


def separable_valid_stack(stack: np.ndarray, k_rows: np.ndarray, k_cols: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`separable_valid` of K images laid side by side, ``stack[:, i, :]`` being image i.

    The pass along axis 0 filters the (H, K W) array in one go (one product per strip for all
    K images: fewer, larger BLAS calls); the pass along axis 1 then runs on each image's block,
    so each image is filtered exactly as :func:`separable_valid` filters it alone, whatever its
    place in the stack (its values do not depend on the other images).

    Args:
        stack: (H, K, W) C-contiguous float64 or float32.
        k_rows: odd-length kernel applied along axis 0.
        k_cols: kernel along axis 1 (defaults to ``k_rows``).

    Returns:
        K Fortran-contiguous arrays (H - len(k_rows) + 1, W - len(k_cols) + 1) of the stack's dtype.
    """
    if k_cols is None:
        k_cols = k_rows
    h, k, w = stack.shape
    rows = correlate_valid(stack.reshape(h, k * w), k_rows, 0)
    return [correlate_valid(rows[:, i * w : (i + 1) * w], k_cols, 1) for i in range(k)]


def separable_valid_decimate(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``separable_valid(img, k)[::2, ::2]`` without computing the discarded outputs.

    Args:
        img: (H, W) float64.
        k: odd-length symmetric kernel applied along both axes.

    Returns:
        (ceil((H - n + 1) / 2), ceil((W - n + 1) / 2)) float64, ``n = len(k)``.
    """
    return correlate_valid(correlate_valid(img, k, 0, step=2), k, 1, step=2)


def sobel(img: np.ndarray, pad: str = "zero", dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Sobel responses by correlation, keeping the input size.

    ``dx`` is the correlation with ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` (right minus left) and
    ``dy`` the correlation with ``[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]`` (bottom minus top). The
    references use various flips of these kernels; a flip only changes signs, which each caller
    applies where it matters.

    Args:
        img: (H, W) float64.
        pad: ``"zero"``, ``"replicate"`` or ``"mirror"`` (reflection without repeating the edge).
        dtype: float64, or float32 (exact too for integer-valued input up to 2^21 in magnitude,
            since every partial sum is then an integer below 2^24).

    Returns:
        ``(dx, dy)``, each (H, W) of ``dtype``; exact on integer-valued input.
    """
    p = np.pad(img.astype(dtype, copy=False), 1, mode=_PAD_MODES[pad])
    v = p[1:-1] + p[1:-1]  # vertical smoothing, (H, W + 2)
    v += p[:-2]
    v += p[2:]
    dx = v[:, 2:] - v[:, :-2]
    s = p[:, 1:-1] + p[:, 1:-1]  # horizontal smoothing, (H + 2, W)
    s += p[:, :-2]
    s += p[:, 2:]
    dy = s[2:] - s[:-2]
    return dx, dy


def block_sum(img: np.ndarray, block: int) -> np.ndarray:
    """Sum over non-overlapping ``block x block`` tiles, partial tiles zero-padded (MATLAB ``blkproc``).

    Args:
        img: (H, W) float64 or float32 (summed in float64).
        block: tile side in pixels.

    Returns:
        (ceil(H / block), ceil(W / block)) float64.
    """
    h, w = img.shape
    hb, wb = -(-h // block), -(-w // block)
    if (hb * block, wb * block) == (h, w):
        padded = img  # whole tiles only: no padding copy
    else:
        padded = np.zeros((hb * block, wb * block), dtype=img.dtype)
        padded[:h, :w] = img
    return padded.reshape(hb, block, wb, block).sum(axis=(1, 3), dtype=np.float64)


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
