"""Module forms of the loss terms of :mod:`ivfuse.losses.terms` (same arguments, same values)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .terms import (
    foreground_bce,
    gradient_max_loss,
    intensity_max_loss,
    intensity_select_loss,
    mse_loss,
    ncc_loss,
    ssim_loss,
)

__all__ = [
    "ForegroundBCELoss",
    "GradientMaxLoss",
    "IntensityMaxLoss",
    "IntensitySelectLoss",
    "MSELoss",
    "NCCLoss",
    "SSIMLoss",
]


class _Term(nn.Module):
    fn: Callable[..., torch.Tensor]

    def forward(self, fused: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor, weight: torch.Tensor | None = None):
        return type(self).fn(fused, ir, vis, weight)


class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`."""

    def __init__(self, window: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        self.window, self.sigma = window, sigma

    def forward(self, fused, ir, vis, weight=None):
        return ssim_loss(fused, ir, vis, weight, self.window, self.sigma)


class NCCLoss(_Term):
    """Module form of :func:`ncc_loss`."""

    fn = staticmethod(ncc_loss)


class MSELoss(_Term):
    """Module form of :func:`mse_loss` (fused against both inputs)."""

    fn = staticmethod(mse_loss)


class IntensityMaxLoss(_Term):
    """Module form of :func:`intensity_max_loss`."""

    fn = staticmethod(intensity_max_loss)


class GradientMaxLoss(_Term):
    """Module form of :func:`gradient_max_loss`."""

    fn = staticmethod(gradient_max_loss)


class IntensitySelectLoss(_Term):
    """Module form of :func:`intensity_select_loss`."""

    fn = staticmethod(intensity_select_loss)


class ForegroundBCELoss(nn.Module):
    """Module form of :func:`foreground_bce`."""

    def __init__(self, logits: bool = False) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, prob, mask, weight=None):
        return foreground_bce(prob, mask, weight, self.logits)
