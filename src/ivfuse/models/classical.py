"""Training-free fusion baselines, registered as models.

All take the infrared image and visible luminance as (B, 1, H, W) tensors in [0, 1], work at
any size (odd sizes and 1x1 included) and return (B, 1, H, W) in [0, 1].

* ``average``: mean of the two images.
* ``max``: absolute-max choose in the pixel domain (images are non-negative, so the larger value).
* ``laplacian``: Laplacian pyramid (Burt and Adelson 1983); base band averaged, detail bands
  chosen by absolute maximum.
* ``dwt``: 2-D Haar discrete wavelet transform; approximation averaged, detail coefficients
  chosen by absolute maximum.
* ``gff``: guided filtering fusion (Li, Kang and Hu, IEEE TIP 2013) with the paper's parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..filters import box_filter, gaussian_blur, guided_filter, laplacian, separable_conv
from .base import FusionModel, check_inputs
from .registry import register_model

__all__ = ["AverageFusion", "MaxFusion", "LaplacianPyramidFusion", "WaveletFusion", "GuidedFilterFusion"]


def _absmax(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(a.abs() >= b.abs(), a, b)


class _Classical(FusionModel):
    def forward(self, ir: torch.Tensor, vis: torch.Tensor, return_maps: bool = False):
        check_inputs(ir, vis)
        fused = self.fuse(ir, vis).clamp(0.0, 1.0)
        return (fused, {}) if return_maps else fused

    def fuse(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class AverageFusion(_Classical):
    """Pixel-wise mean."""

    def fuse(self, ir, vis):
        return 0.5 * (ir + vis)


class MaxFusion(_Classical):
    """Pixel-wise absolute-max choose."""

    def fuse(self, ir, vis):
        return _absmax(ir, vis)


def _max_levels(h: int, w: int, levels: int) -> int:
    """Decomposition depth such that the coarsest band keeps at least 2 pixels per side."""
    return max(0, min(levels, int(math.floor(math.log2(max(1, min(h, w))))) - 1))


_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur5(x: torch.Tensor) -> torch.Tensor:
    return separable_conv(x, _BINOMIAL.to(dtype=x.dtype, device=x.device), mode="reflect")


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Detail bands (finest first) followed by the low-pass residual; exact inverse in :func:`collapse`."""
    bands = []
    cur = x
    for _ in range(levels):
        down = _blur5(cur)[..., ::2, ::2]
        bands.append(cur - _up(down, cur.shape[-2:]))
        cur = down
    bands.append(cur)
    return bands


def collapse(bands: list[torch.Tensor]) -> torch.Tensor:
    cur = bands[-1]
    for detail in reversed(bands[:-1]):
        cur = detail + _up(cur, detail.shape[-2:])
    return cur


class LaplacianPyramidFusion(_Classical):
    """Laplacian pyramid fusion.

    Args:
        levels: maximum number of detail bands (reduced automatically for small images).
    """

    def __init__(self, levels: int = 4):
        super().__init__()
        self.levels = levels

    def fuse(self, ir, vis):
        n = _max_levels(ir.shape[-2], ir.shape[-1], self.levels)
        pa, pb = laplacian_pyramid(ir, n), laplacian_pyramid(vis, n)
        fused = [_absmax(a, b) for a, b in zip(pa[:-1], pb[:-1])]
        fused.append(0.5 * (pa[-1] + pb[-1]))
        return collapse(fused)


def haar_dwt2(x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One level of the orthonormal 2-D Haar transform; odd sides are padded by replication.

    Returns:
        (LL, (LH, HL, HH)), each (B, C, ceil(H/2), ceil(W/2)).
    """
    h, w = x.shape[-2:]
    x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate") if (h % 2 or w % 2) else x
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return 0.5 * (a + b + c + d), (0.5 * (a - b + c - d), 0.5 * (a + b - c - d), 0.5 * (a - b - c + d))


def haar_idwt2(ll: torch.Tensor, details: tuple[torch.Tensor, torch.Tensor, torch.Tensor], size: tuple[int, int]):
    """Inverse of :func:`haar_dwt2`, cropped to ``size``."""
    lh, hl, hh = details
    a = 0.5 * (ll + lh + hl + hh)
    b = 0.5 * (ll - lh + hl - hh)
    c = 0.5 * (ll + lh - hl - hh)
    d = 0.5 * (ll - lh - hl + hh)
    bsz, ch, h2, w2 = ll.shape
    out = ll.new_empty(bsz, ch, 2 * h2, 2 * w2)
    out[..., 0::2, 0::2], out[..., 0::2, 1::2] = a, b
    out[..., 1::2, 0::2], out[..., 1::2, 1::2] = c, d
    return out[..., : size[0], : size[1]]


class WaveletFusion(_Classical):
    """Discrete wavelet transform fusion (Haar).

    Args:
        levels: maximum decomposition depth (reduced automatically for small images).
    """

    def __init__(self, levels: int = 3):
        super().__init__()
        self.levels = levels

    def fuse(self, ir, vis):
        n = _max_levels(ir.shape[-2], ir.shape[-1], self.levels)
        a, b = ir, vis
        stack = []
        for _ in range(n):
            size = a.shape[-2:]
            a, da = haar_dwt2(a)
            b, db = haar_dwt2(b)
            stack.append((size, tuple(_absmax(x, y) for x, y in zip(da, db))))
        fused = 0.5 * (a + b)
        for size, details in reversed(stack):
            fused = haar_idwt2(fused, details, size)
        return fused


class GuidedFilterFusion(_Classical):
    """Guided filtering fusion (GFF), Li, Kang and Hu, IEEE TIP 22(7), 2013.

    Two-scale decomposition with a 31x31 mean filter; saliency = Gaussian-smoothed (11x11,
    sigma 5) absolute Laplacian; binary weight maps (largest saliency wins) refined by guided
    filtering with the source image as guide (base: r=45, eps=0.3; detail: r=7, eps=1e-6),
    then normalised to sum to one per pixel.
    """

    def __init__(self, base_radius: int = 15, r1: int = 45, eps1: float = 0.3, r2: int = 7, eps2: float = 1e-6):
        super().__init__()
        self.base_radius, self.r1, self.eps1, self.r2, self.eps2 = base_radius, r1, eps1, r2, eps2

    def fuse(self, ir, vis):
        srcs = torch.stack((ir, vis), dim=0)  # (2, B, 1, H, W)
        flat = srcs.flatten(0, 1)
        base = box_filter(flat, self.base_radius)
        detail = flat - base
        sal = gaussian_blur(laplacian(flat).abs(), sigma=5.0, radius=5).view_as(srcs)
        p_ir = (sal[0] >= sal[1]).to(ir.dtype)
        pmaps = torch.stack((p_ir, 1.0 - p_ir), dim=0).flatten(0, 1)
        wb = guided_filter(pmaps, flat, self.r1, self.eps1).clamp(min=0).view_as(srcs)
        wd = guided_filter(pmaps, flat, self.r2, self.eps2).clamp(min=0).view_as(srcs)

        def _norm(w: torch.Tensor) -> torch.Tensor:
            s = w.sum(0, keepdim=True)
            return torch.where(s > 1e-8, w / s.clamp(min=1e-8), torch.full_like(w, 0.5))

        wb, wd = _norm(wb), _norm(wd)
        return (wb * base.view_as(srcs)).sum(0) + (wd * detail.view_as(srcs)).sum(0)


@register_model(name="average", trainable=False)
def average_fusion(**kwargs) -> FusionModel:
    """Pixel-wise mean of infrared and visible."""
    return AverageFusion(**kwargs)


@register_model(name="max", trainable=False)
def max_fusion(**kwargs) -> FusionModel:
    """Pixel-wise absolute-max choose."""
    return MaxFusion(**kwargs)


@register_model(name="laplacian", trainable=False)
def laplacian_fusion(**kwargs) -> FusionModel:
    """Laplacian pyramid, absolute-max details, averaged base."""
    return LaplacianPyramidFusion(**kwargs)


@register_model(name="dwt", trainable=False)
def dwt_fusion(**kwargs) -> FusionModel:
    """Haar discrete wavelet transform, absolute-max details, averaged approximation."""
    return WaveletFusion(**kwargs)


@register_model(name="gff", trainable=False)
def gff_fusion(**kwargs) -> FusionModel:
    """Guided filtering fusion (Li et al. 2013)."""
    return GuidedFilterFusion(**kwargs)
