"""The result of a registration: a homography, an optional dense residual field, and resampling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Registration", "RegistrationError", "needs_cv2"]


class RegistrationError(ValueError):
    """A pair could not be registered; the message names the pair and the reason."""


def needs_cv2():
    """The ``cv2`` module, or an error naming the extra to install."""
    try:
        import cv2
    except ImportError:
        raise ImportError("registration needs OpenCV: pip install 'ivfuse[cv]'") from None
    return cv2


@dataclass
class Registration:
    """A transform that resamples a moving image onto a fixed image's pixel grid.

    Pixel coordinates are OpenCV's: the centre of pixel (row r, column c) is the point (x=c, y=r).
    A fixed pixel ``x`` takes its value from the moving image at ``H^-1 (x + flow[x])``: the flow
    is a residual in fixed-grid pixels, measured after the homography.

    Attributes:
        homography: (3, 3) float64, maps moving pixel coordinates to fixed pixel coordinates.
        flow: None, or the dense residual field (H, W, 2) float32 (dx, dy) on the fixed grid.
        fixed_shape: (H, W) of the fixed image.
        method: "homography", "flow" or "both".
        inliers: RANSAC inliers of the keypoint stage (0 when it was not run).
        moving_shape: (h, w) of the moving image the transform was estimated for.
        matches: putative keypoint matches that entered RANSAC.
        scale: mean scale of the homography (moving to fixed), from its Jacobian at the moving centre.
        angle: rotation in degrees (counter-clockwise in the image as displayed is negative).
        score: structure correlation between the fixed image and the registered moving image, in the
            valid region (-1..1).
        coarse_scale: scale found by template matching (1.0 when the coarse stage was not needed).
        name: the pair's name, used in messages.
    """

    homography: np.ndarray
    flow: np.ndarray | None
    fixed_shape: tuple[int, int]
    method: str = "homography"
    inliers: int = 0
    moving_shape: tuple[int, int] | None = None
    matches: int = 0
    scale: float = 1.0
    angle: float = 0.0
    score: float = float("nan")
    coarse_scale: float = 1.0
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.homography = np.asarray(self.homography, dtype=np.float64).reshape(3, 3)
        self.fixed_shape = (int(self.fixed_shape[0]), int(self.fixed_shape[1]))
        if self.moving_shape is not None:
            self.moving_shape = (int(self.moving_shape[0]), int(self.moving_shape[1]))
        if self.flow is not None:
            self.flow = np.asarray(self.flow, dtype=np.float32)
            if self.flow.shape != (*self.fixed_shape, 2):
                raise ValueError(f"registration '{self.name}': flow has shape {self.flow.shape}, "
                                 f"expected {(*self.fixed_shape, 2)}")

    def sample_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Moving-image coordinates of every fixed pixel: two (H, W) float32 arrays (x, y)."""
        h, w = self.fixed_shape
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        if self.flow is not None:
            xs = xs + self.flow[..., 0]
            ys = ys + self.flow[..., 1]
        inv = np.linalg.inv(self.homography)
        den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
        den = np.where(np.abs(den) < 1e-12, 1e-12, den)
        mx = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den
        my = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den
        return mx.astype(np.float32), my.astype(np.float32)

    def apply(self, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resample ``moving`` onto the fixed grid (bilinear, one interpolation for homography and flow).

        Args:
            moving: (h, w) or (h, w, C) image, float or integer.

        Returns:
            (registered, valid): the moving image on the fixed grid, (H, W[, C]) float32 with zeros
            outside the moving image's footprint, and the (H, W) bool mask of fixed pixels that
            fall inside the moving image.
        """
        cv2 = needs_cv2()
        img = np.asarray(moving)
        if img.ndim not in (2, 3):
            raise ValueError(f"registration '{self.name}': expected an (H, W) or (H, W, C) image, got {img.shape}")
        if self.moving_shape is not None and img.shape[:2] != self.moving_shape:
            raise ValueError(f"registration '{self.name}': moving image is {img.shape[:2]}, the transform was "
                             f"estimated for {self.moving_shape}")
        img = img.astype(np.float32, copy=False)
        mx, my = self.sample_maps()
        h, w = img.shape[:2]
        valid = (mx >= -0.5) & (mx <= w - 0.5) & (my >= -0.5) & (my <= h - 0.5)
        chans = [img] if img.ndim == 2 or img.shape[2] <= 4 else [img[..., c] for c in range(img.shape[2])]
        out = [cv2.remap(c, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for c in chans]
        res = out[0] if len(out) == 1 else np.stack(out, axis=-1)
        if img.ndim == 3 and res.ndim == 2:
            res = res[..., None]
        res[~valid] = 0
        return res, valid

    def corners(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The moving image's four corners mapped by the homography, (4, 2) fixed pixel coordinates."""
        h, w = shape or self.moving_shape or self.fixed_shape
        return map_points(self.homography, np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float))

    def to_json(self) -> dict:
        """A JSON-serialisable dict (the dense flow is not included: it is saved as a separate .npy)."""
        return {
            "homography": self.homography.tolist(),
            "fixed_shape": list(self.fixed_shape),
            "moving_shape": list(self.moving_shape) if self.moving_shape is not None else None,
            "method": self.method,
            "inliers": int(self.inliers),
            "matches": int(self.matches),
            "scale": float(self.scale),
            "angle": float(self.angle),
            "score": None if not np.isfinite(self.score) else float(self.score),
            "coarse_scale": float(self.coarse_scale),
            "name": self.name,
            "has_flow": self.flow is not None,
            "convention": "homography maps moving (x, y) pixel centres to fixed ones; a fixed pixel x samples the "
                          "moving image at H^-1 (x + flow[x])",
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, d: dict, flow: np.ndarray | None = None) -> "Registration":
        """The inverse of :meth:`to_json`; ``flow`` is the dense field (from the .npy) if there is one."""
        score = d.get("score")
        return cls(
            homography=np.asarray(d["homography"], dtype=np.float64),
            flow=flow,
            fixed_shape=tuple(d["fixed_shape"]),
            method=d.get("method", "homography"),
            inliers=int(d.get("inliers", 0)),
            moving_shape=tuple(d["moving_shape"]) if d.get("moving_shape") else None,
            matches=int(d.get("matches", 0)),
            scale=float(d.get("scale", 1.0)),
            angle=float(d.get("angle", 0.0)),
            score=float("nan") if score is None else float(score),
            coarse_scale=float(d.get("coarse_scale", 1.0)),
            name=d.get("name", ""),
            extra=dict(d.get("extra", {})),
        )


def map_points(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a homography to (N, 2) points."""
    p = np.c_[np.asarray(pts, float), np.ones(len(pts))] @ np.asarray(h, float).T
    return p[:, :2] / p[:, 2:3]
