"""PoMAI's source-blend output (``source_blend=True``): a convex per-pixel mix of I, V and the decoded image."""

from __future__ import annotations

import pytest
import torch

from ivfuse.models.pomai import Decoder, PoMAI
from ivfuse.models.registry import save_weights
from ivfuse.train.init_weights import InitSource, load_init_weights

TINY = {"dim": 8, "encoder_blocks": 1, "decoder_blocks": 1, "num_heads": 1, "group_size": 16, "n_hashes": 1,
        "stride": 2, "detail_skip": True, "detail_hidden": 4}
NEW = ["decoder.mix_context.0.weight", "decoder.mix_local.0.bias", "decoder.mix_local.0.weight",
       "decoder.mix_local.2.bias", "decoder.mix_local.2.weight"]


def pair(b: int = 2, h: int = 13, w: int = 18, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


def test_decoder_blend_starts_as_the_stated_mix():
    torch.manual_seed(0)
    plain = Decoder(8, 1, 1, stride=2, detail_skip=True, detail_hidden=4)
    blend = Decoder(8, 1, 1, stride=2, detail_skip=True, detail_hidden=4, source_blend=True, blend_bias=2.0)
    blend.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(1, 16, 5, 6)
    ir, vis = pair(1, 10, 12)
    images = torch.cat((ir, vis), dim=1)
    recon = plain(x, images)
    fused, w = blend(x, images, return_blend=True)
    e2 = torch.exp(torch.tensor(2.0))
    wr = float(e2 / (e2 + 2))
    assert torch.allclose(w[:, 2], torch.full_like(w[:, 2], wr), atol=1e-6)
    assert torch.allclose(fused, (1 - wr) / 2 * (ir + vis) + wr * recon, atol=1e-6)
    assert plain(x, images, return_blend=True)[1] is None


def test_decoder_blend_is_convex_and_can_copy_a_source():
    dec = Decoder(8, 1, 1, stride=2, detail_skip=True, source_blend=True)
    with torch.no_grad():
        dec.mix_local[2].bias.copy_(torch.tensor([0.0, 30.0, 0.0]))  # all weight on the visible image
    x = torch.randn(2, 16, 4, 4)
    ir, vis = pair(2, 8, 8, seed=3)
    fused, w = dec(x, torch.cat((ir, vis), dim=1), return_blend=True)
    assert torch.allclose(w.sum(1), torch.ones(2, 8, 8), atol=1e-6)
    assert torch.allclose(fused, vis, atol=1e-5)
    with pytest.raises(ValueError, match="needs detail_skip"):
        Decoder(8, stride=2, source_blend=True)


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (13, 18)])
def test_model_with_blend_any_size_and_maps(size):
    torch.manual_seed(0)
    model = PoMAI(**TINY, source_blend=True).eval()
    ir, vis = pair(2, *size)
    with torch.no_grad():
        fused, maps = model(ir, vis, return_maps=True)
    assert fused.shape == (2, 1, *size)
    assert set(maps) == {"gate", "blend_ir", "blend_vis"}
    assert maps["blend_ir"].shape == maps["blend_vis"].shape == (2, 1, *size)
    assert float(fused.min()) >= 0 and float(fused.max()) <= 1
    assert float((maps["blend_ir"] + maps["blend_vis"]).max()) < 1  # the decoded image keeps a share


def test_blend_grows_onto_plain_weights_and_learns(tmp_path):
    """Grown from weights without the blend, every old tensor loads; both mixing branches get gradients."""
    torch.manual_seed(0)
    plain = PoMAI(**TINY)
    path = tmp_path / "plain.safetensors"
    save_weights(plain, path)
    grown = PoMAI(**TINY, source_blend=True)
    with pytest.raises(ValueError, match="decoder.mix_"):
        load_init_weights(grown, InitSource(spec=str(path), path=path), "pomai_cpu")
    missing = load_init_weights(grown, InitSource(spec=str(path), path=path), "pomai_cpu", partial=True)
    assert sorted(missing) == NEW
    for k, v in plain.state_dict().items():
        assert torch.equal(grown.state_dict()[k], v)
    ir, vis = pair(2, 12, 12)
    grown.train()
    fused = grown(ir, vis)
    ((fused - torch.maximum(ir, vis)) ** 2).mean().backward()
    for mod in (grown.decoder.mix_context[0], grown.decoder.mix_local[2]):
        assert mod.weight.grad is not None and float(mod.weight.grad.abs().sum()) > 0


def test_cpu_variant_blends_and_paper_variant_decodes_only():
    from ivfuse.models import create_model

    assert create_model("pomai_cpu", pretrained=False).decoder.mix_local is not None
    assert create_model("pomai", pretrained=False).decoder.mix_local is None
