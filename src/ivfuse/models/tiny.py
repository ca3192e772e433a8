"""A tiny trainable fusion CNN for tests, smoke runs and the training tutorial.

``tiny_cnn`` is not a published method: a few 3x3 convolutions that predict a per-pixel blend
weight and a residual, so it starts near the average of the inputs and learns in minutes on a
CPU. It exposes named parts (``encoder``, ``fuse``, ``head``, ``fg_head``) so stage freezing can
be exercised, and returns ``{"alpha", "foreground"}`` maps so mask losses can be too.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import FusionModel, check_inputs
from .registry import register_model

__all__ = ["TinyFusionCNN"]


class TinyFusionCNN(FusionModel):
    """``fused = clamp(alpha * ir + (1 - alpha) * vis + residual, 0, 1)`` from a small conv stack.

    Args:
        width: feature channels.
        depth: 3x3 conv layers in ``fuse``.
    """

    pad_multiple = 1

    def __init__(self, width: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.LeakyReLU(0.1))
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.1)]
        self.fuse = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 2, 3, padding=1)  # alpha logit, residual
        self.fg_head = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.stage = ""

    def set_stage(self, name: str) -> None:
        """Record the training stage (the model behaves the same in every stage)."""
        self.stage = name

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, return_maps: bool = False):
        check_inputs(ir, vis)
        f = self.fuse(self.encoder(torch.cat((ir, vis), dim=1)))
        out = self.head(f)
        alpha = torch.sigmoid(out[:, :1])
        fused = alpha * ir + (1 - alpha) * vis + 0.1 * torch.tanh(out[:, 1:])
        fused = fused.clamp(0.0, 1.0)
        if not return_maps:
            return fused
        return fused, {"alpha": alpha, "foreground": torch.sigmoid(self.fg_head(f))}


@register_model
def tiny_cnn(**kwargs) -> TinyFusionCNN:
    """Tiny trainable CNN (blend weight + residual), for tests and smoke runs; not a paper model."""
    return TinyFusionCNN(**kwargs)
