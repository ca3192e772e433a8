"""FusionNet's two readings of the alpha blend and its ablation switches."""

from __future__ import annotations

import pytest
import torch

from ivfuse.models import create_model
from ivfuse.models.fusionnet import FusionNet


def tiny(**kw) -> FusionNet:
    cfg = {"widths": (4, 6, 8), "enc_blocks": (0, 1, 1), "dec_blocks": (1, 1), "attn_kernel": 3}
    cfg.update(kw)
    return FusionNet(**cfg)


def pair(h: int = 19, w: int = 21):
    g = torch.Generator().manual_seed(3)
    return torch.rand(2, 1, h, w, generator=g), torch.rand(2, 1, h, w, generator=g)


def test_paper_variant_blends_features_and_cpu_variant_blends_pixels():
    assert create_model("fusionnet", pretrained=False).blend_space == "feature"
    assert create_model("fusionnet_cpu", pretrained=False).blend_space == "pixel"


def test_feature_blend_returns_both_maps_at_full_resolution():
    net = tiny().eval()
    ir, vis = pair()
    with torch.no_grad():
        fused, maps = net(ir, vis, return_maps=True)
    assert fused.shape == ir.shape and 0 <= fused.min() and fused.max() <= 1
    assert set(maps) == {"attention", "alpha"}
    assert all(m.shape == ir.shape and 0 <= m.min() and m.max() <= 1 for m in maps.values())
    assert hasattr(net, "feature_blend") and not hasattr(net, "blend")


@pytest.mark.parametrize("space", ["feature", "pixel"])
def test_switches_remove_their_modules_and_maps(space):
    ir, vis = pair()
    no_attn = tiny(blend_space=space, attention=False).eval()
    no_alpha = tiny(blend_space=space, alpha_blend=False).eval()
    assert not any(k.startswith("attention.") for k in no_attn.state_dict())
    assert not any(k.startswith(("blend.", "feature_blend.")) for k in no_alpha.state_dict())
    with torch.no_grad():
        _, m1 = no_attn(ir, vis, return_maps=True)
        _, m2 = no_alpha(ir, vis, return_maps=True)
    assert "attention" not in m1 and "alpha" in m1
    assert "alpha" not in m2 and "attention" in m2
    bare = tiny(blend_space=space, attention=False, alpha_blend=False).eval()
    with torch.no_grad():
        fused, maps = bare(ir, vis, return_maps=True)
    assert maps == {} and fused.shape == ir.shape


def test_feature_blend_gets_gradients():
    net = tiny()
    ir, vis = pair(16, 16)
    net(ir, vis).mean().backward()
    grads = [p.grad for p in net.feature_blend.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_unweighted_streams_are_symmetric_in_pixel_space():
    """Without attention and without the residual, pixel-space output is still a convex blend of the inputs."""
    net = tiny(blend_space="pixel", attention=False, residual_scale=0.0, share_encoder=True).eval()
    x = pair()[0]
    with torch.no_grad():
        fused = net(x, x)
    assert torch.allclose(fused, x, atol=1e-6)  # a convex blend of two equal images is that image


def test_bad_blend_space_is_refused():
    with pytest.raises(ValueError, match="blend_space"):
        tiny(blend_space="latent")


def test_shipped_cpu_weights_still_load():
    net = create_model("fusionnet_cpu")  # strict load of the shipped safetensors
    assert net.blend_space == "pixel" and hasattr(net, "blend")


def test_image_context_starts_as_a_no_op_and_then_sees_the_whole_image():
    torch.manual_seed(0)
    plain = tiny(blend_space="pixel")
    grown = tiny(blend_space="pixel", image_context=4)
    missing = grown.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("blend.context.") for k in missing)
    ir, vis = pair(32, 64)
    with torch.no_grad():
        assert torch.allclose(grown(ir, vis), plain(ir, vis), atol=1e-6)  # zero-initialised correction
        torch.nn.init.normal_(grown.blend.context[-1].weight, std=0.5)
        far = ir.clone()
        far[..., :, 48:] = 1.0  # change only the right quarter, beyond the receptive field of the left edge
        left_plain = (plain(far, vis) - plain(ir, vis))[..., :, :8].abs().max()
        left_ctx = (grown(far, vis) - grown(ir, vis))[..., :, :8].abs().max()
    assert float(left_plain) == 0.0
    assert float(left_ctx) > 1e-3  # the image mean moved, and the left edge's blend with it


def test_image_context_needs_the_pixel_blend():
    with pytest.raises(ValueError, match="image_context"):
        tiny(blend_space="feature", image_context=4)
    with pytest.raises(ValueError, match="image_context"):
        tiny(blend_space="pixel", alpha_blend=False, image_context=4)
