"""FusionNet's base/detail blend (``detail_sigma > 0``): brightness and texture chosen by separate maps."""

from __future__ import annotations

import pytest
import torch

from ivfuse.filters import gaussian_blur
from ivfuse.models.fusionnet import AlphaBlending, FusionNet
from ivfuse.models.registry import save_weights
from ivfuse.train.init_weights import InitSource, load_init_weights

TINY = {"widths": (4, 8), "enc_blocks": (0, 1), "dec_blocks": (1,), "attn_kernel": 3, "blend_space": "pixel"}


def pair(b: int = 2, h: int = 16, w: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


def test_detail_blend_starts_as_the_one_map_blend():
    torch.manual_seed(0)
    plain = AlphaBlending(4, residual_scale=0.25)
    split = AlphaBlending(4, residual_scale=0.25, detail_sigma=2.0)
    split.load_state_dict(plain.state_dict(), strict=False)
    feats = torch.randn(2, 4, 16, 20)
    ir, vis = pair()
    f0, a0 = plain(feats, ir, vis)
    f1, a1, beta = split(feats, ir, vis, return_beta=True)
    assert torch.allclose(beta, a1) and torch.allclose(a0, a1)
    assert torch.allclose(f0, f1, atol=1e-6)


def test_detail_blend_takes_base_and_detail_from_different_sources():
    blend = AlphaBlending(4, residual_scale=0.0, detail_sigma=1.5)
    with torch.no_grad():
        blend.head.weight.zero_()
        blend.head.bias.fill_(30.0)  # alpha = 1: the infrared base layer
        blend.detail_head.bias.fill_(-60.0)  # beta = 0: the visible detail layer
    ir = torch.full((1, 1, 24, 24), 0.8)  # bright and flat
    vis = 0.3 + 0.1 * torch.sin(torch.arange(24.0)).view(1, 1, 1, 24).expand(1, 1, 24, 24)  # dark, textured
    with torch.no_grad():
        fused, alpha, beta = blend(torch.zeros(1, 4, 24, 24), ir, vis, return_beta=True)
    expected = gaussian_blur(ir, 1.5) + vis - gaussian_blur(vis, 1.5)
    assert float(alpha.min()) > 0.999 and float(beta.max()) < 1e-3
    assert torch.allclose(fused, expected.clamp(0, 1), atol=1e-4)
    assert float(fused.mean()) > 0.7  # the infrared brightness ...
    assert float(fused.std()) > 0.5 * float(vis.std())  # ... with the visible texture
    with pytest.raises(ValueError, match="detail_sigma"):
        AlphaBlending(4, detail_sigma=-1.0)


@pytest.mark.parametrize("size", [(1, 1), (7, 9), (16, 20)])
def test_model_with_detail_blend_any_size_and_maps(size):
    torch.manual_seed(0)
    model = FusionNet(**TINY, detail_sigma=2.0).eval()
    ir, vis = pair(2, *size)
    with torch.no_grad():
        fused, maps = model(ir, vis, return_maps=True)
    assert fused.shape == (2, 1, *size)
    assert {"alpha", "detail_alpha"} <= set(maps) and maps["detail_alpha"].shape == (2, 1, *size)
    assert float(fused.min()) >= 0 and float(fused.max()) <= 1
    with pytest.raises(ValueError, match="detail_sigma, detail_gain and contrast_ratio need"):
        FusionNet(widths=(4, 8), enc_blocks=(0, 1), dec_blocks=(1,), blend_space="feature", detail_sigma=2.0)


def test_detail_blend_grows_onto_plain_weights_and_learns(tmp_path):
    torch.manual_seed(0)
    plain = FusionNet(**TINY)
    path = tmp_path / "plain.safetensors"
    save_weights(plain, path)
    grown = FusionNet(**TINY, detail_sigma=2.0)
    missing = load_init_weights(grown, InitSource(spec=str(path), path=path), "fusionnet_cpu", partial=True)
    assert sorted(missing) == ["blend.detail_head.bias", "blend.detail_head.weight"]
    ir, vis = pair()
    with torch.no_grad():
        assert torch.allclose(plain.eval()(ir, vis), grown.eval()(ir, vis), atol=1e-6)
    grown.train()
    fused = grown(ir, vis)
    ((fused - torch.maximum(ir, vis)) ** 2).mean().backward()
    assert float(grown.blend.detail_head.weight.grad.abs().sum()) > 0


def test_weights_trained_before_the_detail_blend_still_load_by_name(tmp_path):
    from ivfuse.models.registry import create_model

    old = create_model("fusionnet_cpu", pretrained=False, detail_sigma=0.0)
    path = save_weights(old, tmp_path / "old.safetensors")
    loaded = create_model("fusionnet_cpu", checkpoint_path=path)
    assert loaded.blend.detail_head is None  # rebuilt as the preset was, not refused
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x, x.flip(-1)), old.eval()(x, x.flip(-1)))
    assert create_model("fusionnet_cpu", pretrained=False).blend.detail_head is not None  # today's preset has it


def test_detail_gain_scales_only_the_detail_layers():
    ir, vis = pair(h=24, w=24)
    ir, vis = 0.3 + 0.4 * ir, 0.3 + 0.4 * vis  # mid-grey: no clamping at a gain of 1.5
    torch.manual_seed(0)
    one = AlphaBlending(4, residual_scale=0.0, detail_sigma=2.0)
    more = AlphaBlending(4, residual_scale=0.0, detail_sigma=2.0, detail_gain=1.5)
    more.load_state_dict(one.state_dict())
    feats = torch.randn(2, 4, 24, 24)
    f1, alpha, beta = one(feats, ir, vis, return_beta=True)
    f15, _ = more(feats, ir, vis)
    base = gaussian_blur(vis, 2.0) + alpha * (gaussian_blur(ir, 2.0) - gaussian_blur(vis, 2.0))
    assert torch.allclose(f15 - base, 1.5 * (f1 - base), atol=1e-5)
    assert (f1 - base).abs().max() > 0.05  # the sources have texture to scale
    with pytest.raises(ValueError, match="detail_gain"):
        AlphaBlending(4, detail_gain=1.5)  # no split, nothing to scale


def _split_blend(**kw) -> AlphaBlending:
    torch.manual_seed(0)
    blend = AlphaBlending(4, residual_scale=0.0, detail_sigma=2.0, **kw)
    torch.nn.init.normal_(blend.head.weight, std=0.5)  # maps far from 0.5, different per pixel
    torch.nn.init.normal_(blend.detail_head.weight, std=0.5)
    return blend


def test_contrast_ratio_keeps_the_visible_image_where_the_infrared_is_flat():
    _, vis = pair(h=24, w=24)
    ir = torch.full_like(vis, 0.8)  # a bright, flat infrared: the learned alpha would take its grey
    feats = torch.randn(2, 4, 24, 24)
    plain, weighted = _split_blend(), _split_blend(contrast_ratio=1.0)
    f0, a0 = plain(feats, ir, vis)
    f1, a1, b1 = weighted(feats, ir, vis, return_beta=True)
    assert a0.mean() > 0.2 and (f0 - vis).abs().mean() > 0.05  # without the weight the infrared shows
    assert a1.max() < 1e-3 and b1.max() < 1e-3  # the returned maps are the ones applied
    assert torch.allclose(f1, vis, atol=1e-3)


def test_contrast_ratio_scales_the_maps_by_the_contrast_ratio_below_r_only():
    ir, vis = pair(h=24, w=24)
    feats = torch.randn(2, 4, 24, 24)
    f0, a0, b0 = _split_blend()(feats, ir, vis, return_beta=True)
    strong = 0.5 + 0.1 * (vis - 0.5)  # a tenth of the infrared's contrast: w = 1 at r = 1
    s0 = _split_blend()(feats, ir, strong, return_beta=True)
    s1 = _split_blend(contrast_ratio=1.0)(feats, ir, strong, return_beta=True)
    assert all(torch.equal(x, y) for x, y in zip(s0, s1))
    weak = 0.5 + 0.25 * (ir - 0.5)  # the infrared's own pattern at a quarter of its contrast
    _, a1, b1 = _split_blend(contrast_ratio=1.0, contrast_sigma=3.0)(feats, weak, vis, return_beta=True)
    _, a0w, b0w = _split_blend()(feats, weak, vis, return_beta=True)
    ratio = a1 / a0w
    assert torch.allclose(ratio, b1 / b0w, atol=1e-4)  # one w for both maps
    assert 0.1 < ratio.median() < 0.5 and ratio.max() <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="contrast_ratio"):
        AlphaBlending(4, contrast_ratio=1.0)  # no detail layers to measure contrast on
    with pytest.raises(ValueError, match="contrast_ratio"):
        AlphaBlending(4, detail_sigma=2.0, contrast_ratio=-1.0)


def test_contrast_ratio_has_finite_gradients_and_keeps_the_maps_on_flat_images():
    blend = _split_blend(contrast_ratio=1.0)
    feats = torch.randn(1, 4, 12, 12, requires_grad=True)
    flat = torch.full((1, 1, 12, 12), 0.5)
    fused, alpha = blend(feats, flat, flat)
    assert torch.allclose(alpha, _split_blend()(feats, flat, flat)[1])  # both flat: w = 1
    (fused.sum() + alpha.sum()).backward()
    assert torch.isfinite(feats.grad).all() and all(torch.isfinite(p.grad).all() for p in blend.parameters())


def test_decoder_merge_mixes_before_upsampling_with_the_concatenation_result():
    net = FusionNet(**TINY).eval()
    coarse, skip = torch.randn(2, 8, 5, 7), torch.randn(2, 4, 10, 14)
    up = torch.nn.functional.interpolate(coarse, size=(10, 14), mode="bilinear", align_corners=False)
    expected = net.merge[0](torch.cat((up, skip), dim=1))
    assert torch.allclose(net._merge(0, coarse, skip), expected, atol=1e-5)


def test_shipped_model_is_built_with_its_cards_arguments_and_the_preset_without(tmp_path, monkeypatch):
    import json

    from ivfuse.models import registry

    net = registry.create_model("fusionnet_cpu", pretrained=False)
    assert net.blend.detail_gain == 1.0  # what a training run from the preset builds
    weights = save_weights(net, tmp_path / "w.safetensors")
    card = {"file": str(weights), "sha256": registry.sha256_file(weights), "model_kwargs": {"detail_gain": 1.3}}
    (tmp_path / "fusionnet_cpu.json").write_text(json.dumps(card))
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    shipped = registry.create_model("fusionnet_cpu")
    assert shipped.blend.detail_gain == pytest.approx(1.3)
    assert torch.equal(shipped.blend.detail_head.weight, net.blend.detail_head.weight)  # the card's weights
    assert registry.create_model("fusionnet_cpu", pretrained=True, detail_gain=1.0).blend.detail_gain == 1.0
    assert registry.create_model("fusionnet_cpu", checkpoint_path=weights).blend.detail_gain == 1.0
    assert registry.model_identity("fusionnet_cpu") != card["sha256"]  # the setting changes the output
    read = registry.WeightCard.from_json(tmp_path / "fusionnet_cpu.json")
    assert read.to_dict()["model_kwargs"] == {"detail_gain": 1.3}
