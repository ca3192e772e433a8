"""The dense residual after a global transform: NGF optimisation (:mod:`.ngf`) or edge-weighted DIS flow."""

from __future__ import annotations

import numpy as np

from .features import to_u8
from .ngf import ngf_field
from .transform import Registration, RegistrationError, needs_cv2

__all__ = ["dense_residual", "dense_stage"]


def dense_residual(fs: np.ndarray, ms: np.ndarray, reg: Registration, p, name: str) -> np.ndarray:
    """(H, W, 2) float32: DIS flow from the fixed structure map to the registered moving one, smoothed.

    ``fs``/``ms`` are the (H, W) / (h, w) structure maps, ``p`` the :class:`RegistrationParams`
    (``flow_passes``, ``flow_smooth``, ``flow_max``).

    Run ``flow_passes`` times, each pass measuring what is left after the previous ones (the
    increments are small and smooth, so they are added).
    """
    cv2 = needs_cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    a = to_u8(cv2.GaussianBlur(fs, (0, 0), 1.0))
    total = np.zeros((*fs.shape, 2), np.float32)
    for k in range(p.flow_passes):
        step = Registration(reg.homography, total if k else None, reg.fixed_shape, moving_shape=reg.moving_shape)
        warped, valid = step.apply(ms)
        b = to_u8(cv2.GaussianBlur(warped, (0, 0), 1.0))
        flow = dis.calc(a, b, None)
        if not np.isfinite(flow).all():
            raise RegistrationError(f"'{name}': dense refinement diverged")
        # Trust the flow where both maps have edges and the moving image is present; spread it smoothly.
        wgt = (np.minimum(fs, warped) * valid).astype(np.float32)
        wgt = cv2.GaussianBlur(wgt, (0, 0), 2.0) + 1e-4
        sm = p.flow_smooth / (k + 1)
        den = cv2.GaussianBlur(wgt, (0, 0), sm)
        total += np.stack([cv2.GaussianBlur(flow[..., c] * wgt, (0, 0), sm) / den for c in range(2)], axis=-1)
    return np.clip(total, -p.flow_max, p.flow_max).astype(np.float32)


def dense_stage(fs: np.ndarray, ms: np.ndarray, fg: np.ndarray, mg: np.ndarray, reg: Registration, p,
                name: str) -> np.ndarray | None:
    """The dense residual of ``p.dense`` after ``reg``'s homography (None: none that helps).

    ``fs``/``ms`` are the structure maps (for DIS), ``fg``/``mg`` the gray images (for NGF).
    ``p.dense``: "dis", "ngf" (NGF from the homography), "dis+ngf" (NGF from the DIS field) or
    "auto": "dis+ngf" when ``reg`` is the coarse stage alone (method "flow": DIS's patch search
    reaches the large residuals a coarse transform leaves), "ngf" after a homography ("both").
    With NGF, the distances before and after go to ``reg.extra["dense"]``.
    """
    stage = p.dense
    if stage == "auto":
        stage = "dis+ngf" if reg.method == "flow" else "ngf"
    if stage not in ("dis", "ngf", "dis+ngf"):
        raise ValueError(f"unknown dense stage '{p.dense}'; use auto, ngf, dis or dis+ngf")
    flow = dense_residual(fs, ms, reg, p, name) if stage in ("dis", "dis+ngf") else None
    if stage == "dis":
        return flow
    start = Registration(reg.homography, flow, reg.fixed_shape, method=reg.method, moving_shape=reg.moving_shape,
                         name=name)
    refined, info = ngf_field(fg, mg, start, p.ngf, name)
    reg.extra["dense"] = {"stage": stage if refined is not None else ("dis" if flow is not None else "none"), **info}
    return refined if refined is not None else flow
