"""Colour conversions: BT.601 full-range YCbCr (the JPEG convention) and luminance.

Every function takes a float tensor of shape (..., 3, H, W) or (..., 1, H, W) with values in
[0, 1] and returns the same layout. Chroma channels are offset by 0.5, so a gray pixel has
Cb = Cr = 0.5 and the conversions are exact inverses up to float rounding.

>>> import torch
>>> rgb = torch.rand(2, 3, 5, 7)
>>> bool(torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-6))
True
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "rgb_to_luma",
    "RgbToYcbcr",
    "YcbcrToRgb",
    "RgbToLuma",
]

# BT.601 luma weights (ITU-R BT.601, as used by JPEG/JFIF full-range YCbCr).
_KR, _KG, _KB = 0.299, 0.587, 0.114


def _check_channels(x: torch.Tensor, channels: int, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != channels:
        raise ValueError(f"{name}: expected shape (..., {channels}, H, W), got {tuple(x.shape)}")


def rgb_to_luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luminance Y of an RGB image.

    Args:
        rgb: (..., 3, H, W) in [0, 1].

    Returns:
        (..., 1, H, W) in [0, 1].
    """
    _check_channels(rgb, 3, "rgb_to_luma")
    r, g, b = rgb.unbind(-3)
    return (_KR * r + _KG * g + _KB * b).unsqueeze(-3)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB to full-range BT.601 YCbCr.

    Args:
        rgb: (..., 3, H, W) in [0, 1].

    Returns:
        (..., 3, H, W): Y in [0, 1], Cb and Cr in [0, 1] centred on 0.5.
    """
    _check_channels(rgb, 3, "rgb_to_ycbcr")
    r, g, b = rgb.unbind(-3)
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / (2.0 * (1.0 - _KB)) + 0.5
    cr = (r - y) / (2.0 * (1.0 - _KR)) + 0.5
    return torch.stack((y, cb, cr), dim=-3)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 YCbCr to RGB (inverse of :func:`rgb_to_ycbcr`); not clamped.

    Args:
        ycbcr: (..., 3, H, W), Y in [0, 1], chroma centred on 0.5.

    Returns:
        (..., 3, H, W) RGB; values may leave [0, 1] slightly for out-of-gamut inputs.
    """
    _check_channels(ycbcr, 3, "ycbcr_to_rgb")
    y, cb, cr = ycbcr.unbind(-3)
    cb = cb - 0.5
    cr = cr - 0.5
    r = y + 2.0 * (1.0 - _KR) * cr
    b = y + 2.0 * (1.0 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    return torch.stack((r, g, b), dim=-3)


class RgbToYcbcr(nn.Module):
    """Module form of :func:`rgb_to_ycbcr`."""

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_ycbcr(rgb)


class YcbcrToRgb(nn.Module):
    """Module form of :func:`ycbcr_to_rgb`."""

    def forward(self, ycbcr: torch.Tensor) -> torch.Tensor:
        return ycbcr_to_rgb(ycbcr)


class RgbToLuma(nn.Module):
    """Module form of :func:`rgb_to_luma`."""

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb_to_luma(rgb)
