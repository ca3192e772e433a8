"""Differentiable image filters on (B, C, H, W) tensors, valid for any H, W >= 1.

Shared by the classical baselines and the losses: box (mean) filter, Gaussian blur, Sobel and
Laplacian responses, the guided filter, and reflection padding that falls back to replication
where an image is too small to reflect.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "safe_pad",
    "box_filter",
    "gaussian_kernel1d",
    "gaussian_blur",
    "sobel",
    "laplacian",
    "guided_filter",
]


def safe_pad(x: torch.Tensor, pad: tuple[int, int, int, int], mode: str = "reflect") -> torch.Tensor:
    """``F.pad`` that replicates instead of reflecting when a side is too short to reflect.

    Args:
        x: (B, C, H, W).
        pad: (left, right, top, bottom).
        mode: "reflect", "replicate", "constant" or "circular".
    """
    if mode == "reflect":
        h, w = x.shape[-2:]
        left, right, top, bottom = pad
        if max(left, right) >= w or max(top, bottom) >= h:
            mode = "replicate"
    return F.pad(x, pad, mode=mode)


def box_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)x(2r+1) window, windows clipped at the border (normalised by their size).

    Implemented with cumulative sums, so its cost does not depend on ``radius``.

    Args:
        x: (B, C, H, W).
        radius: window radius r >= 0.
    """
    if radius < 0:
        raise ValueError(f"box_filter: radius must be >= 0, got {radius}")
    if radius == 0:
        return x

    def _sum_along(t: torch.Tensor, dim: int) -> torch.Tensor:
        n = t.shape[dim]
        c = torch.cumsum(t, dim=dim)
        zero = torch.zeros_like(c.narrow(dim, 0, 1))
        c = torch.cat((zero, c), dim=dim)  # c[k] = sum of t[:k]
        idx = torch.arange(n, device=t.device)
        hi = (idx + radius + 1).clamp(max=n)
        lo = (idx - radius).clamp(min=0)
        return c.index_select(dim, hi) - c.index_select(dim, lo)

    ones = torch.ones(1, 1, x.shape[-2], x.shape[-1], dtype=x.dtype, device=x.device)
    num = _sum_along(_sum_along(x, -2), -1)
    den = _sum_along(_sum_along(ones, -2), -1)
    return num / den


def gaussian_kernel1d(sigma: float, radius: int | None = None, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian of length 2*radius+1 (radius defaults to ceil(3 sigma))."""
    if sigma <= 0:
        raise ValueError(f"gaussian_kernel1d: sigma must be > 0, got {sigma}")
    r = int(math.ceil(3 * sigma)) if radius is None else int(radius)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype=dtype, device=device)


def _sep_conv(x: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
    b, c, h, w = x.shape
    r = (k.numel() - 1) // 2
    y = x.reshape(b * c, 1, h, w)
    y = safe_pad(y, (r, r, r, r), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def gaussian_blur(x: torch.Tensor, sigma: float, radius: int | None = None, mode: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur with reflection padding; output has the input's shape.

    Reflection needs the image to be larger than the radius; smaller images are replicated.
    """
    k = gaussian_kernel1d(sigma, radius, dtype=x.dtype, device=x.device)
    r = (k.numel() - 1) // 2
    if mode == "reflect" and (r >= x.shape[-1] or r >= x.shape[-2]):
        mode = "replicate"
    return _sep_conv(x, k, mode)


def _conv3x3(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    b, c, h, w = x.shape
    y = safe_pad(x.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode=mode)
    y = F.conv2d(y, kernel.to(dtype=x.dtype, device=x.device).view(1, 1, 3, 3))
    return y.reshape(b, c, h, w)


_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sobel(x: torch.Tensor, mode: str = "replicate") -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses (gx, gy), each shaped like ``x`` (cross-correlation, unnormalised)."""
    return _conv3x3(x, _SOBEL_X, mode), _conv3x3(x, _SOBEL_X.t().contiguous(), mode)


def laplacian(x: torch.Tensor, mode: str = "replicate") -> torch.Tensor:
    """4-neighbour Laplacian response, shaped like ``x``."""
    return _conv3x3(x, _LAPLACIAN, mode)


def guided_filter(p: torch.Tensor, guide: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Guided filter of He et al. (2010/2013) with a gray guide.

    q = mean(a) * I + mean(b), where a = cov(I, p) / (var(I) + eps), b = mean(p) - a mean(I),
    all means over (2r+1)^2 windows (clipped at borders).

    Args:
        p: (B, C, H, W) image to filter.
        guide: (B, 1, H, W) or (B, C, H, W) guidance image.
        radius: window radius.
        eps: regularisation (on the scale of the images, e.g. [0, 1]).
    """
    mean_i = box_filter(guide, radius)
    mean_p = box_filter(p, radius)
    cov_ip = box_filter(guide * p, radius) - mean_i * mean_p
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius) * guide + box_filter(b, radius)
