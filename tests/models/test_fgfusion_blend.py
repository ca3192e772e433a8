"""FGFusion's source-blend output (``source_blend=True``): a convex per-pixel mix of I, V and eq. (6)."""

from __future__ import annotations

import pytest
import torch

from ivfuse.models.fgfusion import FGFusion, ResidualFidelity
from ivfuse.models.registry import save_weights
from ivfuse.train.init_weights import InitSource, load_init_weights

TINY = {"dim": 4, "deep_dim": 8, "shallow_blocks": 1, "deep_blocks": 1, "inn_layers": 2, "heads": 2,
        "attention_pool": 4, "dense_layers": 2, "growth": 4, "fidelity_blocks": 1}


def pair(b: int = 2, h: int = 13, w: int = 18, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


def test_blend_starts_as_the_stated_mix_of_sources_and_reconstruction():
    torch.manual_seed(0)
    rfm = ResidualFidelity(4, blocks=1, source_blend=True, blend_bias=2.0)
    fu = torch.randn(1, 4, 9, 11)
    ir, vis = pair(1, 9, 11)
    fused, w = rfm(fu, ir, vis)
    recon = (torch.tanh(rfm.out(rfm.blocks(fu))) + 1) / 2
    e2 = torch.exp(torch.tensor(2.0))
    wr = e2 / (e2 + 2)
    # zero-initialised mixing conv: the same weights everywhere, (1, 1, e^2) / (2 + e^2)
    assert torch.allclose(w[:, 2], torch.full_like(w[:, 2], float(wr)), atol=1e-6)
    assert torch.allclose(fused, (1 - wr) / 2 * (ir + vis) + wr * recon, atol=1e-6)


def test_blend_is_convex_and_can_copy_a_source():
    rfm = ResidualFidelity(4, source_blend=True)
    with torch.no_grad():
        rfm.mix.bias.copy_(torch.tensor([30.0, 0.0, 0.0]))  # all weight on the infrared
    fu = torch.randn(2, 4, 7, 7)
    ir, vis = pair(2, 7, 7, seed=3)
    fused, w = rfm(fu, ir, vis)
    assert torch.allclose(w.sum(1), torch.ones(2, 7, 7), atol=1e-6)
    assert torch.allclose(fused, ir, atol=1e-5)
    with pytest.raises(ValueError, match="needs the sources"):
        rfm(fu)


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (13, 18)])
def test_model_with_blend_any_size_and_maps(size):
    torch.manual_seed(0)
    model = FGFusion(**TINY, source_blend=True).eval()
    ir, vis = pair(2, *size)
    with torch.no_grad():
        fused, maps = model(ir, vis, return_maps=True)
    assert fused.shape == (2, 1, *size)
    assert set(maps) == {"foreground", "blend_ir", "blend_vis"}
    assert maps["blend_ir"].shape == maps["blend_vis"].shape == (2, 1, *size)
    assert float(fused.min()) >= 0 and float(fused.max()) <= 1
    assert float((maps["blend_ir"] + maps["blend_vis"]).max()) < 1  # the reconstruction keeps a share


def test_blend_grows_onto_plain_weights_and_learns(tmp_path):
    """Grown from eq. (6) weights, every old tensor loads; the mixing conv gets gradients."""
    torch.manual_seed(0)
    plain = FGFusion(**TINY)
    path = tmp_path / "plain.safetensors"
    save_weights(plain, path)
    grown = FGFusion(**TINY, source_blend=True)
    with pytest.raises(ValueError, match="rfm.mix.weight"):  # the file lacks the mixing conv
        load_init_weights(grown, InitSource(spec=str(path), path=path), "fgfusion_cpu")
    missing = load_init_weights(grown, InitSource(spec=str(path), path=path), "fgfusion_cpu", partial=True)
    assert sorted(missing) == ["rfm.mix.bias", "rfm.mix.weight"]
    for k, v in plain.state_dict().items():
        assert torch.equal(grown.state_dict()[k], v)
    ir, vis = pair(2, 12, 12)
    grown.train()
    fused = grown(ir, vis)
    ((fused - torch.maximum(ir, vis)) ** 2).mean().backward()
    assert grown.rfm.mix.weight.grad is not None and float(grown.rfm.mix.weight.grad.abs().sum()) > 0


def test_cpu_variant_blends_and_paper_variant_follows_eq6():
    from ivfuse.models import create_model

    assert create_model("fgfusion_cpu", pretrained=False).rfm.mix is not None
    assert create_model("fgfusion", pretrained=False).rfm.mix is None
