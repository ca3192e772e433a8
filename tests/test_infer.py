"""Padding to a multiple, cropping back, device and dtype handling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ivfuse.infer import crop_to, forward_padded, pad_to_multiple, run_model, select_device, split_output
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


def test_split_output_forms():
    t = torch.rand(1, 1, 3, 3)
    m = {"alpha": torch.rand(1, 1, 3, 3)}
    assert split_output(t)[0] is t and split_output(t)[1] == {}
    assert split_output((t, None))[1] == {} and split_output((t,))[1] == {}
    fused, maps = split_output((t, m))
    assert fused is t and maps == m and maps is not m
    with pytest.raises(TypeError, match="returned list"):
        split_output([t])


def test_forward_padded_crops_back_and_matches_run_model():
    model = _NeedsMultiple().eval()
    ir, vis = torch.rand(2, 1, 21, 30), torch.rand(2, 1, 21, 30)
    fused, maps = forward_padded(model, ir, vis, 8)
    assert fused.shape == (2, 1, 21, 30) and maps["alpha"].shape == (2, 1, 21, 30)
    assert fused.dtype == torch.float32
    assert torch.equal(fused, 0.5 * (ir + vis))
    assert torch.equal(fused, run_model(model, ir, vis, device="cpu", tile=None))


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


class _LocalNet(FusionModel):
    """Two 3x3 convolutions: receptive radius 2, so tiles overlapping by more give identical pixels."""

    pad_multiple = 4

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(2, 4, 3, padding=1, padding_mode="replicate")
        self.b = nn.Conv2d(4, 1, 3, padding=1, padding_mode="replicate")

    def forward(self, ir, vis, return_maps=False):
        y = torch.sigmoid(self.b(torch.tanh(self.a(torch.cat((ir, vis), 1)))))
        return (y, {"alpha": y}) if return_maps else y


@pytest.mark.parametrize("tile,overlap", [(32, 8), (50, 12), (64, 16)])
def test_tiled_equals_untiled_inside_and_has_no_seam(tile, overlap):
    g = torch.Generator().manual_seed(3)
    ir, vis = torch.rand(1, 1, 101, 133, generator=g), torch.rand(1, 1, 101, 133, generator=g)
    net = _LocalNet()
    full = run_model(net, ir, vis, device="cpu", tile=None)
    tiled, maps = run_model(net, ir, vis, device="cpu", tile=tile, tile_overlap=overlap, return_maps=True)
    assert tiled.shape == full.shape and maps["alpha"].shape == full.shape
    # Away from padding effects at tile borders the blend reproduces the untiled result.
    assert (tiled - full).abs().mean() < 1e-3
    assert torch.allclose(maps["alpha"], tiled)


def test_tile_grid_covers_with_overlap():
    from ivfuse.infer import tile_grid

    for n, t, o in [(100, 32, 8), (33, 64, 8), (64, 64, 8), (1000, 256, 32)]:
        starts = tile_grid(n, t, o)
        assert starts[0] == 0 and starts[-1] + min(t, n) == n
        assert all(b - a <= t - o for a, b in zip(starts, starts[1:]))


def test_auto_tiling_triggers_only_when_needed(monkeypatch):
    import ivfuse.infer as infer

    net = _LocalNet()
    monkeypatch.setattr(infer, "available_memory", lambda dev: 64 * 1024**3)
    assert infer.auto_tile_size(net, 480, 640, torch.device("cpu")) is None
    monkeypatch.setattr(infer, "available_memory", lambda dev: 200 * 1024**2)
    side = infer.auto_tile_size(net, 2160, 3840, torch.device("cpu"))
    assert side is not None and side % net.pad_multiple == 0 and side * side * 2048 <= 100 * 1024**2
    from ivfuse.models import create_model

    assert infer.auto_tile_size(create_model("gff"), 2160, 3840, torch.device("cpu")) is None  # parameter-free
