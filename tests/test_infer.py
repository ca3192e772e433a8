"""Padding to a multiple, cropping back, device and dtype handling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ivfuse.infer import crop_to, pad_to_multiple, run_model, select_device
from ivfuse.models import FusionModel


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (67, 45), (33, 97), (64, 64)])
@pytest.mark.parametrize("multiple", [1, 8, 16])
def test_pad_then_crop_restores(size, multiple):
    x = torch.rand(2, 1, *size)
    p, orig = pad_to_multiple(x, multiple)
    assert p.shape[-2] % multiple == 0 and p.shape[-1] % multiple == 0
    assert p.shape[-2] - size[0] < multiple and p.shape[-1] - size[1] < multiple
    assert torch.equal(crop_to(p, orig), x)


def test_reflection_padding_mirrors():
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 3, 5).contiguous()
    p, _ = pad_to_multiple(x, 8)
    assert p[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1]


class _NeedsMultiple(FusionModel):
    """Fails unless H and W are multiples of 8; output depends on position, so cropping must be exact."""

    pad_multiple = 8

    def forward(self, ir, vis, return_maps=False):
        assert ir.shape[-1] % 8 == 0 and ir.shape[-2] % 8 == 0
        y = 0.5 * (ir + vis)
        return (y, {"alpha": torch.full_like(y, 0.25)}) if return_maps else y


def test_run_model_pads_crops_and_returns_maps():
    ir, vis = torch.rand(2, 1, 33, 45), torch.rand(2, 1, 33, 45)
    fused, maps = run_model(_NeedsMultiple(), ir, vis, device="cpu", return_maps=True)
    assert fused.shape == ir.shape and maps["alpha"].shape == ir.shape
    assert torch.allclose(fused, 0.5 * (ir + vis))
    assert fused.device.type == "cpu" and fused.dtype == torch.float32


def test_run_model_bfloat16_close_to_float32():
    conv = nn.Conv2d(2, 1, 3, padding=1)

    class M(FusionModel):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, ir, vis, return_maps=False):
            y = torch.sigmoid(self.conv(torch.cat((ir, vis), 1)))
            return (y, {}) if return_maps else y

    ir, vis = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
    a = run_model(M(), ir, vis, device="cpu", dtype="float32")
    b = run_model(M(), ir, vis, device="cpu", dtype="bfloat16")
    assert b.dtype == torch.float32 and (a - b).abs().max() < 2e-2


def test_select_device():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")
