"""Two-stage registration of an infrared/visible pair: coarse template matching, then a fine global stage.

Stages (``estimate``):

1. Coarse, only when the moving image is smaller than the fixed one (a narrower field of view
   inside a wider one): the structure maps (see :func:`features.structure_map`) of both images
   are compared by normalised cross-correlation at a range of scales and angles of the moving
   map; the best peaks (at distinct positions) give scale, angle and shift.
2. Fine: (a) ORB keypoints on the fixed structure map and on the coarsely warped moving structure
   map, Hamming matching with Lowe's ratio test, a gate on the distance from the coarse
   prediction, RANSAC similarity, ECC (enhanced correlation coefficient) refinement of a full
   homography, kept only when it raises the correlation; (b) a direct coarse-to-fine search of a
   similarity that maximises the structure-map correlation (:mod:`refine`), started from (a) and
   from each coarse peak. The plausible candidate with the highest correlation is kept, so a pair
   whose keypoints fail is still registered.
3. Optional dense residual (``flow`` / ``both``): DIS optical flow between the structure maps of
   the fixed image and the warped moving image, smoothed with weights from the edge strength.

Every homography is checked for plausibility (positive determinant, scale range, anisotropy,
perspective distortion, rotation from the coarse estimate, inlier count and ratio) and a
:class:`RegistrationError` names the pair and the reason otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .features import as_gray, check_texture, structure_map, to_u8
from .dense import dense_stage as _dense
from .ngf import NGFParams
from .refine import refine_global, structure_ncc
from .transform import Registration, RegistrationError, map_points, needs_cv2

__all__ = ["RegistrationParams", "estimate", "refine_flow", "METHODS"]

METHODS = ("homography", "flow", "both")


@dataclass
class RegistrationParams:
    """Settings of :func:`estimate` (the defaults are the ones benchmarked in docs/registration.md).

    Attributes:
        coarse_min_scale, coarse_max_scale: scale range searched by template matching: the
            smallest scale is this fraction of the largest at which the moving image fits, the
            largest is also limited by ``coarse_max_scale``.
        coarse_angles: rotations (degrees) of the template tried at every scale.
        coarse_margin: fraction cut from each side of the moving map for the template.
        coarse_steps: scales tried, geometrically spaced.
        coarse_width: the fixed structure map is resized to this width for template matching.
        orb_features: ORB keypoints per image.
        ratio: Lowe's ratio test threshold.
        gate: largest distance (fraction of the fixed image's diagonal) between a match and the
            coarse prediction.
        ransac_px: RANSAC reprojection threshold in fixed pixels.
        min_inliers, min_inlier_ratio: below either, the pair is refused.
        scale_range: allowed scale of the final homography relative to the coarse scale.
        max_anisotropy: largest ratio of the two singular values of the homography's Jacobian.
        max_perspective: largest relative change of the projective denominator over the moving image.
        ecc_iterations: ECC refinement iterations (0 to skip the refinement).
        flow_smooth: sigma (pixels) of the edge-weighted smoothing of the dense residual.
        flow_max: largest residual displacement kept, in pixels (larger ones are clipped).
        flow_passes: dense passes, each measuring what the previous ones left.
        features: what ORB describes: "structure" (edge maps, the default: best across modalities
            in the benchmark), "gray" or "clahe" (contrast-equalised gray).
        model: RANSAC model of the keypoint stage, "affine" (4 degrees of freedom: scale, rotation,
            shift; ECC then refines a full homography) or "homography".
        coarse_keep: coarse peaks (apart from each other) that the structure search starts from.
        max_rotation: largest rotation (degrees) of the fine result relative to the coarse one.
        refine: "structure" (direct search of a similarity maximising the structure-map correlation,
            :func:`refine.refine_global`, from the coarse transform and from the keypoint result;
            the better of those and the keypoint result is kept) or "none" (keypoints only).
        refine_levels: pyramid factors of that search, coarsest first.
        refine_affine: free a full affine after the similarity on the finest level.
        dense: the dense stage of "flow" and "both": "ngf" (a smooth field optimised on
            normalised gradient fields, :mod:`ivfuse.registration.ngf`), "dis" (edge-weighted
            DIS optical flow on structure maps), "dis+ngf" (NGF from the DIS field) or "auto"
            ("dis+ngf" for "flow", "ngf" for "both"; :func:`.dense.dense_stage`).
        ngf: settings of the "ngf" stage.
    """

    coarse_min_scale: float = 0.4
    coarse_max_scale: float = 2.5
    coarse_steps: int = 30
    coarse_angles: tuple[float, ...] = (-6.0, -3.0, 0.0, 3.0, 6.0)
    coarse_margin: float = 0.12
    coarse_width: int = 480
    orb_features: int = 4000
    ratio: float = 0.9
    gate: float = 0.12
    ransac_px: float = 4.0
    min_inliers: int = 12
    min_inlier_ratio: float = 0.08
    scale_range: tuple[float, float] = (0.7, 1.4)
    max_anisotropy: float = 1.3
    max_perspective: float = 0.15
    ecc_iterations: int = 100
    flow_smooth: float = 20.0
    flow_max: float = 80.0
    flow_passes: int = 1
    features: str = "structure"
    model: str = "affine"
    max_rotation: float = 12.0
    coarse_keep: int = 3
    refine: str = "structure"
    refine_levels: tuple[int, ...] = (4, 2, 1)
    refine_affine: bool = False
    dense: str = "auto"
    ngf: NGFParams = field(default_factory=NGFParams)


def estimate(fixed: np.ndarray, moving: np.ndarray, method: str = "homography", name: str = "",
             params: RegistrationParams | None = None) -> Registration:
    """Estimate the transform that puts ``moving`` onto ``fixed``'s pixel grid.

    Args:
        fixed: (H, W) or (H, W, 3) float image in [0, 1] (the reference grid, e.g. the visible image).
        moving: (h, w) or (h, w, 3) float image in [0, 1], any size (e.g. the infrared image).
        method: "homography" (global), "flow" (dense field only, after the coarse stage), or
            "both" (homography, then a dense residual).
        name: pair name used in error messages.
        params: settings; the defaults when None.

    Returns:
        A :class:`Registration`; ``apply(moving)`` gives the registered image and its valid mask.

    Raises:
        RegistrationError: no texture, too few inliers, or an implausible transform.
        ValueError: unknown ``method``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown registration method '{method}'; use one of {', '.join(METHODS)}")
    p = params or RegistrationParams()
    fg = as_gray(fixed, "fixed", name)
    mg = as_gray(moving, "moving", name)
    check_texture(fg, "fixed", name)
    check_texture(mg, "moving", name)
    fs, ms = structure_map(fg), structure_map(mg)
    coarse = _coarse(fs, ms, p, name, keep=p.coarse_keep if p.refine != "none" else 1)
    h0, cscale, cscore = coarse[0]
    inliers = matches = 0
    extra: dict = {"coarse_score": None if not np.isfinite(cscore) else round(float(cscore), 4)}
    hom = h0
    if method in ("homography", "both"):
        try:
            hom, inliers, matches, fine = _fine(fs, fg, ms, mg, coarse, p, name, extra)
            extra["fine"] = fine
        except RegistrationError as exc:
            if method == "homography":
                raise
            # "both": the dense stage starts from the coarse transform instead, and the JSON says why.
            hom, inliers, matches = h0, 0, 0
            extra["homography_error"] = str(exc)
    reg = Registration(homography=hom, flow=None, fixed_shape=fg.shape, method=method, inliers=inliers,
                       moving_shape=mg.shape, matches=matches, coarse_scale=cscale, name=name, extra=extra)
    if method in ("flow", "both"):
        reg.flow = _dense(fs, ms, fg, mg, reg, p, name)
    reg.scale, reg.angle = _scale_angle(hom, mg.shape)
    reg.score = _score(fs, ms, reg)
    return reg


def refine_flow(fixed: np.ndarray, moving: np.ndarray, reg: Registration,
                params: RegistrationParams | None = None) -> np.ndarray:
    """The dense residual (H, W, 2) float32 of ``moving`` after ``reg``'s homography (images as in :func:`estimate`)."""
    p = params or RegistrationParams()
    fg, mg = as_gray(fixed, "fixed", reg.name), as_gray(moving, "moving", reg.name)
    flow = _dense(structure_map(fg), structure_map(mg), fg, mg, reg, p, reg.name)
    return np.zeros((*fg.shape, 2), np.float32) if flow is None else flow



# ----------------------------------------------------------------------------------------------
# Coarse stage
# ----------------------------------------------------------------------------------------------


def _coarse(fs: np.ndarray, ms: np.ndarray, p: RegistrationParams, name: str,
            keep: int = 1) -> list[tuple[np.ndarray, float, float]]:
    """[(H0, scale, score)]: multi-scale template matching of the moving structure map in the fixed one.

    The ``keep`` best-scoring peaks whose positions lie apart (more than a tenth of the template
    size), best first.
    """
    cv2 = needs_cv2()
    (fh, fw), (mh, mw) = fs.shape, ms.shape
    fit = min(fh / mh, fw / mw)
    if fit <= 1.1 and fit * max(mh / fh, mw / fw) >= 0.9:  # same field of view: start from a plain rescale
        sx, sy = fw / mw, fh / mh
        return [(np.diag([sx, sy, 1.0]), math.sqrt(sx * sy), float("nan"))]
    r = min(1.0, p.coarse_width / fw)
    fsmall = cv2.resize(fs, (max(8, round(fw * r)), max(8, round(fh * r))), interpolation=cv2.INTER_AREA)
    fsmall = cv2.GaussianBlur(fsmall, (0, 0), 1.0)
    hi = min(p.coarse_max_scale, fit)
    lo = min(p.coarse_min_scale * fit, hi)
    # The template is the central part of the moving map, rotated: its rotated corners stay inside.
    c = np.array([(mw - 1) / 2, (mh - 1) / 2])
    ox, oy = round(mw * p.coarse_margin), round(mh * p.coarse_margin)
    found = []
    for ang in p.coarse_angles:
        rot = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), float(ang), 1.0)
        crop = cv2.warpAffine(ms, rot, (mw, mh), flags=cv2.INTER_LINEAR)[oy : mh - oy, ox : mw - ox]
        ch, cw = crop.shape
        for s in np.geomspace(lo, hi, p.coarse_steps):
            tw, th = round(cw * s * r), round(ch * s * r)
            if tw < 16 or th < 16 or tw > fsmall.shape[1] or th > fsmall.shape[0]:
                continue
            tmpl = cv2.GaussianBlur(cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
            res = cv2.matchTemplate(fsmall, tmpl, cv2.TM_CCOEFF_NORMED)
            _, val, _, loc = cv2.minMaxLoc(res)
            # A small template correlates well somewhere by chance: rank by how far the peak stands out
            # of its correlation surface (peak minus mean, in standard deviations).
            psr = (val - float(res.mean())) / max(float(res.std()), 1e-6) if res.size > 1 else val
            found.append((float(psr), float(s), float(ang), loc, (tw, th)))
    if not found:
        raise RegistrationError(f"'{name}': template matching found no scale at which the moving image fits")
    found.sort(key=lambda f: -f[0])
    picked: list = []
    for f in found:
        centre = np.add(f[3], np.divide(f[4], 2))
        if all(np.hypot(*(centre - np.add(g[3], np.divide(g[4], 2)))) > 0.1 * min(g[4]) for g in picked):
            picked.append(f)
        if len(picked) >= keep:
            break
    out = []
    for score, s, ang, (lx, ly), _ in picked:
        rot = np.vstack([cv2.getRotationMatrix2D((float(c[0]), float(c[1])), ang, 1.0), [0, 0, 1]])
        h0 = np.array([[s, 0, lx / r], [0, s, ly / r], [0, 0, 1.0]]) @ np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1.0]])
        out.append((h0 @ rot, s, score))
    return out


# ----------------------------------------------------------------------------------------------
# Fine stage
# ----------------------------------------------------------------------------------------------


def _fine(fs, fg, ms, mg, coarse: list, p: RegistrationParams, name: str, extra: dict):
    """(homography, inliers, matches, which): the keypoint result and the structure search, the better kept.

    Candidates: keypoints + ECC from the best coarse peak (when enough inliers), and
    :func:`refine_global` started from the keypoint result and from each coarse peak (these are
    compared after the coarsest pyramid level, and only the best is refined further). The
    plausible candidate with the highest structure correlation wins; a :class:`RegistrationError`
    when none is plausible.
    """
    h0, cscale, _ = coarse[0]
    a0 = _scale_angle(h0, mg.shape)[1]
    errors: list[str] = []

    def plausible(hom: np.ndarray) -> bool:
        try:
            _check_plausible(hom, mg.shape, cscale, p, name)
            turn = (_scale_angle(hom, mg.shape)[1] - a0 + 180) % 360 - 180
            if abs(turn) > p.max_rotation:
                raise RegistrationError(f"'{name}': implausible transform (rotated {turn:+.1f} degrees from the "
                                        f"coarse estimate, limit {p.max_rotation:g})")
        except RegistrationError as exc:
            errors.append(str(exc))
            return False
        return True

    cands = []
    inl = n = 0
    try:
        hk, inl, n = _keypoints((fs, fg), (ms, mg), h0, p, name)
        hk = _ecc(fs, ms, hk, p)
        if plausible(hk):
            cands.append((hk, inl, n, "keypoints"))
    except RegistrationError as exc:
        errors.append(str(exc))
    if p.refine == "none" and not cands:
        raise RegistrationError(errors[0])
    if p.refine != "none":
        lv = p.refine_levels
        starts = [(c[0], inl, n, "keypoints+structure") for c in cands] + [(c[0], 0, 0, "structure") for c in coarse]
        first = [(refine_global(fs, ms, st[0], levels=lv[:1]), st) for st in starts]
        (hr, _), st = max(first, key=lambda f: f[0][1])
        if len(lv) > 1 or p.refine_affine:
            hr, _ = refine_global(fs, ms, hr, levels=lv[1:] or lv, affine=p.refine_affine)
        if plausible(hr):
            cands.append((hr, *st[1:]))
        if errors:
            extra["keypoint_error"] = errors[0]
    if not cands:
        raise RegistrationError(errors[-1])
    fb, mb = _blur(fs), _blur(ms)
    return max(cands, key=lambda c: structure_ncc(fb, mb, c[0]))


def _blur(a: np.ndarray) -> np.ndarray:
    return needs_cv2().GaussianBlur(a, (0, 0), 1.0)



def _keypoints(fixed: tuple[np.ndarray, np.ndarray], moving: tuple[np.ndarray, np.ndarray], h0: np.ndarray,
               p: RegistrationParams, name: str) -> tuple[np.ndarray, int, int]:
    """ORB + Hamming ratio test + gate + RANSAC between the fixed image and the coarsely warped moving one.

    ``fixed`` and ``moving`` are (structure map, gray) each; ``p.features`` picks which ORB sees.
    """
    cv2 = needs_cv2()
    (fs, fg), (ms, mg) = fixed, moving
    fh, fw = fs.shape
    warped = cv2.warpPerspective(ms, h0, (fw, fh), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpPerspective(np.ones_like(ms), h0, (fw, fh), flags=cv2.INTER_NEAREST, borderValue=0)
    cover = cv2.erode(to_u8(cover), np.ones((15, 15), np.uint8))
    orb = cv2.ORB_create(nfeatures=p.orb_features, scaleFactor=1.2, nlevels=6, edgeThreshold=15, patchSize=31,
                         fastThreshold=5)
    if p.features == "structure":
        a, b = fs, warped
    else:
        a, b = fg, cv2.warpPerspective(mg, h0, (fw, fh), flags=cv2.INTER_LINEAR, borderValue=0)
        if p.features == "clahe":
            cl = cv2.createCLAHE(2.0, (8, 8))
            a, b = cl.apply(to_u8(a)) / 255.0, cl.apply(to_u8(b)) / 255.0
    kf, df = orb.detectAndCompute(to_u8(a), cover)
    km, dm = orb.detectAndCompute(to_u8(b), cover)
    if df is None or dm is None or len(kf) < p.min_inliers or len(km) < p.min_inliers:
        raise RegistrationError(f"'{name}': no texture to match ({0 if kf is None else len(kf)} fixed and "
                                f"{0 if km is None else len(km)} moving keypoints)")
    pf = np.float32([k.pt for k in kf])
    pm = np.float32([k.pt for k in km])
    gate = p.gate * math.hypot(fw, fh)
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(dm, df, k=2)
    src, dst = [], []
    for pair in knn:
        if len(pair) < 2:
            continue
        a, b = pair
        if a.distance < p.ratio * b.distance and np.hypot(*(pm[a.queryIdx] - pf[a.trainIdx])) < gate:
            src.append(pm[a.queryIdx])
            dst.append(pf[a.trainIdx])
    n = len(src)
    if n < p.min_inliers:
        raise RegistrationError(f"'{name}': too few keypoint matches ({n}, need {p.min_inliers})")
    src_a, dst_a = np.float32(src), np.float32(dst)
    if p.model == "affine":
        a1, mask = cv2.estimateAffinePartial2D(src_a, dst_a, method=cv2.RANSAC, ransacReprojThreshold=p.ransac_px,
                                               maxIters=5000, confidence=0.999, refineIters=10)
        h1 = None if a1 is None else np.vstack([a1, [0, 0, 1]])
    else:
        h1, mask = cv2.findHomography(src_a, dst_a, cv2.USAC_MAGSAC, p.ransac_px, maxIters=5000, confidence=0.999)
    if h1 is None:
        h1, mask = cv2.findHomography(src_a, dst_a, cv2.RANSAC, p.ransac_px, maxIters=5000)
    if h1 is None or mask is None:
        raise RegistrationError(f"'{name}': RANSAC found no homography in {n} matches")
    inl = int(mask.sum())
    if inl < p.min_inliers or inl < p.min_inlier_ratio * n:
        raise RegistrationError(f"'{name}': too few inliers ({inl} of {n} matches, need {p.min_inliers} "
                                f"and {p.min_inlier_ratio:.0%})")
    hom = h1 @ h0
    return hom / hom[2, 2], inl, n


def _ecc(fs: np.ndarray, ms: np.ndarray, hom: np.ndarray, p: RegistrationParams) -> np.ndarray:
    """ECC refinement of ``hom`` (moving -> fixed) on blurred structure maps; kept only if it helps."""
    if p.ecc_iterations <= 0:
        return hom
    cv2 = needs_cv2()
    tmpl = cv2.GaussianBlur(ms, (0, 0), 1.0)
    inp = cv2.GaussianBlur(fs, (0, 0), 1.0)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, p.ecc_iterations, 1e-6)
    before = _corr(inp, tmpl, hom)
    try:
        _, w = cv2.findTransformECC(tmpl, inp, hom.astype(np.float32).copy(), cv2.MOTION_HOMOGRAPHY, crit, None, 5)
    except cv2.error:
        return hom
    w = w.astype(np.float64)
    w /= w[2, 2]
    if not np.isfinite(w).all():
        return hom
    # ECC can drift far on repetitive texture; keep it only when it moves the corners a little and helps.
    h, wd = ms.shape
    c = np.array([[0, 0], [wd - 1, 0], [wd - 1, h - 1], [0, h - 1]], float)
    shift = np.abs(map_points(w, c) - map_points(hom, c)).max()
    if shift > 0.03 * math.hypot(*fs.shape) or _corr(inp, tmpl, w) <= before:
        return hom
    return w


def _corr(fixed_map: np.ndarray, moving_map: np.ndarray, hom: np.ndarray) -> float:
    """Zero-mean normalised correlation of the moving map and the fixed map sampled at hom(x)."""
    cv2 = needs_cv2()
    h, w = moving_map.shape
    back = cv2.warpPerspective(fixed_map, hom, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderValue=np.nan)
    ok = np.isfinite(back)
    if ok.sum() < 100:
        return -1.0
    a, b = back[ok] - back[ok].mean(), moving_map[ok] - moving_map[ok].mean()
    return float((a * b).sum() / max(math.sqrt((a * a).sum() * (b * b).sum()), 1e-12))


def _scale_angle(hom: np.ndarray, shape: tuple[int, int]) -> tuple[float, float]:
    """Mean scale and rotation (degrees) of the homography's Jacobian at the moving image's centre."""
    j = _jacobian(hom, shape)
    return math.sqrt(abs(np.linalg.det(j))), math.degrees(math.atan2(j[1, 0] - j[0, 1], j[0, 0] + j[1, 1]))


def _jacobian(hom: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    x, y = (w - 1) / 2, (h - 1) / 2
    v = hom @ np.array([x, y, 1.0])
    return (hom[:2, :2] * v[2] - np.outer(v[:2], hom[2, :2])) / v[2] ** 2


def _check_plausible(hom: np.ndarray, shape: tuple[int, int], cscale: float, p: RegistrationParams,
                     name: str) -> None:
    if not np.isfinite(hom).all():
        raise RegistrationError(f"'{name}': degenerate homography (not finite)")
    h, w = shape
    c = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float) @ hom.T
    den = c[:, 2]
    if (den <= 0).any():
        raise RegistrationError(f"'{name}': degenerate homography (the moving image folds over the horizon)")
    persp = float(den.max() / den.min() - 1)
    if persp > p.max_perspective:
        raise RegistrationError(f"'{name}': implausible transform (perspective change {persp:.2f} over the image, "
                                f"limit {p.max_perspective})")
    j = _jacobian(hom, shape)
    det = float(np.linalg.det(j))
    if det <= 0:
        raise RegistrationError(f"'{name}': degenerate homography (determinant {det:.3g}: mirrored or collapsed)")
    sv = np.linalg.svd(j, compute_uv=False)
    scale = math.sqrt(det)
    lo, hi = p.scale_range
    if not lo * cscale <= scale <= hi * cscale:
        raise RegistrationError(f"'{name}': implausible transform (scale {scale:.3f}, expected "
                                f"{lo * cscale:.3f}..{hi * cscale:.3f})")
    if sv[0] / sv[1] > p.max_anisotropy:
        raise RegistrationError(f"'{name}': implausible transform (shear/anisotropy {sv[0] / sv[1]:.2f}, "
                                f"limit {p.max_anisotropy})")


def _score(fs: np.ndarray, ms: np.ndarray, reg: Registration) -> float:
    warped, valid = reg.apply(ms)
    if valid.sum() < 100:
        return -1.0
    a, b = fs[valid] - fs[valid].mean(), warped[valid] - warped[valid].mean()
    return float((a * b).sum() / max(math.sqrt((a * a).sum() * (b * b).sum()), 1e-12))
