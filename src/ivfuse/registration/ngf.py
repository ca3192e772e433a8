"""The dense stage by optimisation: a smooth field that aligns normalised gradient fields (NGF).

After the global transform, what is left between an infrared and a visible camera is a small
smooth field (lens distortion, parallax, a slightly wrong global estimate). This stage finds it
directly, as a variational registration does: the moving image's sampling positions are the
global transform's plus a free affine correction plus a displacement field on a coarse control
grid (upsampled bicubically, so the field is smooth by construction), and Adam moves them to
minimise

    D(F, M o phi) = mean_x [ 1 - (grad F . grad M_phi)^2 / ((|grad F|^2 + eF^2) (|grad M_phi|^2 + eM^2)) ]

plus ``smooth`` times the squared differences of neighbouring control points. ``D`` is the
normalised gradient field distance of Haber and Modersitzki ("Intensity gradient based
registration and fusion of multi-modal images", 2006): it compares the *directions* of the
edges, squared so that a contrast inversion between the modalities costs nothing, and the eF,
eM terms (a fraction ``eps`` of each image's mean gradient magnitude) keep noise in flat areas
from counting. The optimisation runs on a pyramid (1/4, 1/2, full resolution by default), each
level starting from the previous one's result.

The field is kept only when it lowers ``D`` at full resolution against the global transform
alone; otherwise the global transform stands (``extra.dense`` in the JSON says which).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..filters import gaussian_blur
from .transform import Registration, RegistrationError

__all__ = ["NGFParams", "ngf_field", "ngf_distance"]


@dataclass(frozen=True)
class NGFParams:
    """Settings of the NGF dense stage (defaults: the ones benchmarked in docs/registration.md).

    Attributes:
        levels: pyramid factors, coarsest first.
        iterations: Adam steps per level (same length as ``levels``).
        spacing: control-grid spacing in full-resolution pixels.
        smooth: weight of the control-grid smoothness penalty.
        lr: Adam step for the control points at level factor 2 (scaled with the factor), in pixels.
        affine: also free a global affine correction (6 parameters).
        eps: edge noise level as a fraction of each image's mean gradient magnitude.
        max_shift: largest displacement of the result from the global transform (where both
            sample the moving image), in pixels; beyond it the field is dropped as implausible and
            the global transform stands.
    """

    levels: tuple[int, ...] = (4, 2, 1)
    iterations: tuple[int, ...] = (150, 100, 60)
    spacing: int = 24
    smooth: float = 0.05
    lr: float = 0.5
    affine: bool = True
    eps: float = 0.5
    max_shift: float = 80.0

    def __post_init__(self) -> None:
        if len(self.levels) != len(self.iterations) or not self.levels:
            raise ValueError(f"NGFParams: levels {self.levels} and iterations {self.iterations} must have one "
                             "entry each per pyramid level")
        if min(self.levels) < 1 or self.spacing < 2 or self.eps <= 0 or self.smooth < 0:
            raise ValueError("NGFParams: levels >= 1, spacing >= 2, eps > 0 and smooth >= 0 are required")


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of a (1, 1, H, W) tensor, edges replicated."""
    gx = F.pad(x[..., :, 2:] - x[..., :, :-2], (1, 1, 0, 0), mode="replicate") * 0.5
    gy = F.pad(x[..., 2:, :] - x[..., :-2, :], (0, 0, 1, 1), mode="replicate") * 0.5
    return gx, gy


def _noise_level(x: torch.Tensor, eps: float) -> float:
    gx, gy = _gradients(x)
    return max(float(torch.sqrt(gx * gx + gy * gy).mean()) * eps, 1e-6)


def ngf_distance(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, ea: float, eb: float) -> torch.Tensor:
    """The NGF distance of two (1, 1, H, W) images over ``mask`` (1, 1, H, W) in [0, 1]: 0 (aligned) .. 1."""
    ax, ay = _gradients(a)
    bx, by = _gradients(b)
    dot = ax * bx + ay * by
    value = 1.0 - dot * dot / ((ax * ax + ay * ay + ea * ea) * (bx * bx + by * by + eb * eb))
    return (value * mask).sum() / mask.sum().clamp_min(1.0)


class _Field:
    """Sampling positions in the moving image: base + affine correction + upsampled control grid."""

    def __init__(self, base: torch.Tensor, spacing: int, affine: bool) -> None:
        self.base = base  # (1, 2, H, W) moving-image x, y of every fixed pixel
        h, w = base.shape[-2:]
        self.grid = torch.zeros(1, 2, int(np.ceil(h / spacing)) + 1, int(np.ceil(w / spacing)) + 1,
                                requires_grad=True)
        self.affine = torch.zeros(6, requires_grad=affine)
        self.size = (h, w)

    def positions(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, height, width) x and y on a (height, width) subsampling of the fixed grid."""
        h, w = self.size
        base = F.interpolate(self.base, size=(height, width), mode="bilinear", align_corners=False) \
            if (height, width) != (h, w) else self.base
        disp = F.interpolate(self.grid, size=(height, width), mode="bicubic", align_corners=True)
        ys = torch.linspace(0, h - 1, height).view(height, 1)
        xs = torch.linspace(0, w - 1, width).view(1, width)
        xn, yn = (xs - (w - 1) / 2) / w, (ys - (h - 1) / 2) / w
        a = self.affine
        px = base[:, 0] + disp[:, 0] + w * (a[0] * xn + a[1] * yn + a[2])
        py = base[:, 1] + disp[:, 1] + w * (a[3] * xn + a[4] * yn + a[5])
        return px, py

    def roughness(self) -> torch.Tensor:
        g = self.grid
        return ((g[..., 1:, :] - g[..., :-1, :]) ** 2).mean() + ((g[..., :, 1:] - g[..., :, :-1]) ** 2).mean()


def _sample(moving: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear samples of a (1, 1, h, w) image at pixel positions, and a mask of those inside it
    (eroded by 2 pixels so that the image border's own edge does not count)."""
    h, w = moving.shape[-2:]
    g = torch.stack([(px + 0.5) / w * 2 - 1, (py + 0.5) / h * 2 - 1], dim=-1)
    out = F.grid_sample(moving, g, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (g.abs() <= 1).all(-1).float()[:, None]
    return out, 1.0 - F.max_pool2d(1.0 - inside, 5, 1, 2)


def ngf_field(fixed: np.ndarray, moving: np.ndarray, reg: Registration, params: NGFParams | None = None,
              name: str = "") -> tuple[np.ndarray | None, dict]:
    """The dense residual after ``reg`` (homography and any flow) that minimises the NGF distance.

    Args:
        fixed: (H, W) float32 gray fixed image in [0, 1].
        moving: (h, w) float32 gray moving image in [0, 1].
        reg: the registration to start from (its homography and, when it has one, its flow).
        params: settings; the defaults when None.
        name: pair name for messages.

    Returns:
        (flow, info): ``flow`` is (H, W, 2) float32 in :class:`Registration`'s convention (a fixed
        pixel x samples the moving image at H^-1 (x + flow[x]); it replaces ``reg.flow``, which it
        includes), or None (``reg`` stands as it is) when the field did not
        lower the distance or moved a pixel further than ``max_shift``; ``info`` holds the distance
        before and after, the largest shift and, when the field was dropped, why.

    Raises:
        RegistrationError: the optimisation diverged.
    """
    p = params or NGFParams()
    start = Registration(reg.homography, reg.flow, reg.fixed_shape, moving_shape=reg.moving_shape, name=name)
    mx, my = start.sample_maps()
    hgt, wid = fixed.shape
    ft = torch.from_numpy(np.ascontiguousarray(fixed, dtype=np.float32))[None, None]
    mt = torch.from_numpy(np.ascontiguousarray(moving, dtype=np.float32))[None, None]
    field = _Field(torch.from_numpy(np.stack([mx, my]))[None], p.spacing, p.affine)
    with torch.enable_grad():
        for factor, steps in zip(p.levels, p.iterations):
            _level(field, ft, mt, factor, steps, p)
    with torch.no_grad():
        ef, em = _noise_level(ft, p.eps), _noise_level(mt, p.eps)
        b0, v0 = _sample(mt, field.base[:, 0], field.base[:, 1])
        before = float(ngf_distance(ft, b0, v0, ef, em))
        px, py = field.positions(hgt, wid)
        b1, v1 = _sample(mt, px, py)
        after = float(ngf_distance(ft, b1, v1 * v0, ef, em))
        before_common = float(ngf_distance(ft, b0, v1 * v0, ef, em))
    px, py = px[0].numpy().astype(np.float64), py[0].numpy().astype(np.float64)
    if not (np.isfinite(px).all() and np.isfinite(py).all()):
        raise RegistrationError(f"'{name}': dense refinement diverged")
    inside = (v1[0, 0] * v0[0, 0]).numpy() > 0
    shift = float(np.hypot(px - mx, py - my)[inside].max()) if inside.any() else 0.0
    info = {"ngf_before": round(before, 5), "ngf_after": round(after, 5), "max_shift_px": round(shift, 2)}
    if shift > p.max_shift:
        return None, {**info, "dropped": f"moved a pixel {shift:.1f} px (limit {p.max_shift:g})"}
    if not after < before_common:
        return None, {**info, "dropped": "did not lower the NGF distance"}
    hom = reg.homography
    den = hom[2, 0] * px + hom[2, 1] * py + hom[2, 2]
    qx = (hom[0, 0] * px + hom[0, 1] * py + hom[0, 2]) / den
    qy = (hom[1, 0] * px + hom[1, 1] * py + hom[1, 2]) / den
    ys, xs = np.mgrid[0:hgt, 0:wid].astype(np.float64)
    return np.stack([qx - xs, qy - ys], axis=-1).astype(np.float32), info


def _level(field: _Field, ft: torch.Tensor, mt: torch.Tensor, factor: int, steps: int, p: NGFParams) -> None:
    """``steps`` Adam steps at pyramid factor ``factor`` (both images blurred by factor / 2)."""
    h, w = ft.shape[-2:]
    hs, ws = max(h // factor, 8), max(w // factor, 8)
    sigma = factor / 2  # also at full resolution: half a pixel takes the sensor noise off the gradients
    fs = gaussian_blur(ft, sigma)
    fs = F.interpolate(fs, size=(hs, ws), mode="bilinear", align_corners=False) if factor > 1 else fs
    ms = gaussian_blur(mt, sigma)
    ef, em = _noise_level(fs, p.eps), _noise_level(ms, p.eps) * factor
    groups = [{"params": [field.grid], "lr": p.lr * factor / 2}]
    if p.affine:
        groups.append({"params": [field.affine], "lr": 0.002 * factor / 2})
    opt = torch.optim.Adam(groups)
    for _ in range(steps):
        px, py = field.positions(hs, ws)
        warped, valid = _sample(ms, px, py)
        loss = ngf_distance(fs, warped, valid, ef, em) + p.smooth * field.roughness()
        opt.zero_grad()
        loss.backward()
        opt.step()
