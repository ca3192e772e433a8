"""Direct refinement of a global transform by maximising a cross-modal structure similarity.

Keypoint descriptors compare intensities inside patches, and infrared and visible patches of the
same place rarely agree. Here no matches are formed: the transform itself is moved (a similarity:
log-scale, angle and shift about the moving image's centre, optionally then a full affine) to
maximise the normalised cross-correlation between the moving image's structure map and the fixed
image's structure map sampled through the transform. Structure maps hold edge strength without
sign, so a contrast inversion between the modalities does not change them. The search runs
coarse to fine on an image pyramid with Nelder-Mead at each level.
"""

from __future__ import annotations

import math

import numpy as np

from .transform import needs_cv2

__all__ = ["refine_global", "structure_ncc"]


def _level_maps(fs: np.ndarray, ms: np.ndarray, f: int, blur: float) -> tuple[np.ndarray, np.ndarray]:
    cv2 = needs_cv2()

    def down(a: np.ndarray) -> np.ndarray:
        if f > 1:
            a = cv2.resize(a, (max(8, round(a.shape[1] / f)), max(8, round(a.shape[0] / f))),
                           interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(a, (0, 0), blur) if blur > 0 else a

    return down(fs), down(ms)


def _to_level(hom: np.ndarray, f: float) -> np.ndarray:
    """The full-resolution transform expressed on a pyramid level ``f`` times smaller (pixel centres)."""
    a = np.array([[1 / f, 0, 0.5 / f - 0.5], [0, 1 / f, 0.5 / f - 0.5], [0, 0, 1.0]])
    return a @ hom @ np.linalg.inv(a)


def structure_ncc(fixed_map: np.ndarray, moving_map: np.ndarray, hom: np.ndarray, min_valid: int = 100) -> float:
    """Zero-mean NCC of ``moving_map`` (h, w) and ``fixed_map`` sampled at ``hom`` (moving -> fixed) of each pixel.

    Pixels whose image falls outside the fixed map are left out; -1 when fewer than ``min_valid`` remain.
    """
    cv2 = needs_cv2()
    h, w = moving_map.shape
    back = cv2.warpPerspective(fixed_map, hom, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    ok = np.isfinite(back)
    if ok.sum() < min_valid:
        return -1.0
    a, b = back[ok], moving_map[ok]
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / max(math.sqrt(float((a * a).sum()) * float((b * b).sum())), 1e-12))


def _delta(q: np.ndarray, centre: np.ndarray, affine: bool) -> np.ndarray:
    """Moving-frame correction: similarity (log scale, angle, tx, ty) about ``centre``, or affine (6 params)."""
    cx, cy = centre
    if affine:
        m = np.array([[1 + q[0], q[1], 0], [q[2], 1 + q[3], 0], [0, 0, 1.0]])
        t = np.array([q[4], q[5]])
    else:
        s, a = math.exp(q[0]), q[1]
        m = np.array([[s * math.cos(a), -s * math.sin(a), 0], [s * math.sin(a), s * math.cos(a), 0], [0, 0, 1.0]])
        t = np.array([q[2], q[3]])
    c = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
    ci = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    d = c @ m @ ci
    d[:2, 2] += t
    return d


def refine_global(fs: np.ndarray, ms: np.ndarray, hom: np.ndarray, levels: tuple[int, ...] = (4, 2, 1),
                  blur: float = 1.0, affine: bool = False, max_iter: int = 150) -> tuple[np.ndarray, float]:
    """Refine ``hom`` (moving -> fixed) by maximising :func:`structure_ncc`, coarse to fine.

    Args:
        fs: (H, W) float32 structure map of the fixed image.
        ms: (h, w) float32 structure map of the moving image.
        hom: (3, 3) starting transform, moving pixel coordinates to fixed ones.
        levels: pyramid downsampling factors, coarsest first.
        blur: Gaussian sigma (level pixels) applied to both maps on every level.
        affine: after the similarity, free all six affine parameters on the finest level.
        max_iter: Nelder-Mead iterations per level.

    Returns:
        (refined homography, its NCC on the finest level's maps).
    """
    from scipy.optimize import minimize

    max_turn = math.radians(10.0)  # also bounds the log-scale correction (0.17, about 19 %)

    cur = np.asarray(hom, np.float64).copy()
    h, w = ms.shape
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    stages = [(f, False) for f in levels] + ([(levels[-1], True)] if affine else [])
    score = -1.0
    for f, aff in stages:
        a, b = _level_maps(fs, ms, f, blur)
        base = cur.copy()

        def cost(q: np.ndarray) -> float:
            # A local search: corrections beyond 15 % scale/shear or 10 degrees are not this stage's job.
            if np.abs(q[:4] if aff else q[:2]).max() > (0.15 if aff else max_turn):
                return 1.0
            return -structure_ncc(a, b, _to_level(base @ _delta(q, centre, aff), f))

        n = 6 if aff else 4
        x0 = np.zeros(n)
        if aff:
            steps = np.array([0.004, 0.004, 0.004, 0.004, f * 0.7, f * 0.7])
        else:
            steps = np.array([0.006 * f, math.radians(0.4) * f, f * 1.0, f * 1.0])
        simplex = np.vstack([x0, x0 + np.diag(steps)])
        res = minimize(cost, x0, method="Nelder-Mead",
                       options={"initial_simplex": simplex, "maxiter": max_iter, "xatol": 1e-4, "fatol": 1e-6})
        if -res.fun > -cost(x0):
            cur = base @ _delta(res.x, centre, aff)
        score = -float(min(res.fun, cost(x0)))
    return cur / cur[2, 2], score
