"""The interface every fusion method shares, network or classical."""

from __future__ import annotations

import torch
from torch import nn

from ..filters import check_bchw

__all__ = ["FusionModel", "check_inputs"]


def check_inputs(ir: torch.Tensor, vis: torch.Tensor) -> None:
    """Raise ValueError unless ``ir`` and ``vis`` are (B, 1, H, W) tensors of one shape."""
    for name, t in (("ir", ir), ("vis", vis)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        check_bchw(t, name, channels=1)
    if ir.shape != vis.shape:
        raise ValueError(f"ir and vis must have the same shape, got {tuple(ir.shape)} and {tuple(vis.shape)}")


class FusionModel(nn.Module):
    """Base class: ``model(ir, vis) -> fused``.

    Inputs are the infrared image and the visible luminance, each (B, 1, H, W) float in [0, 1];
    the output is the fused luminance, (B, 1, H, W) in [0, 1]. Models with interpretable
    intermediate maps (attention, alpha, foreground) return ``(fused, maps)`` when called with
    ``return_maps=True``, where ``maps`` is a dict of (B, 1, H, W) tensors in [0, 1].

    Attributes:
        pad_multiple: the inference helpers pad H and W to a multiple of this and crop back.
        train_channels_last: the trainer keeps the weights channels-last on the CPU (inference always
            does: faster for every network here, 1.4-2x at 640x480 on two cores; in training it pays for
            some and costs for others, so each says).
    """

    pad_multiple: int = 1
    train_channels_last: bool = False

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, return_maps: bool = False):  # pragma: no cover
        raise NotImplementedError
