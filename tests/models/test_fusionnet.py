"""FusionNet (issue 6): shapes, ranges, maps, gradients, variants and the target-aware loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ivfuse.models import create_model, list_models
from ivfuse.models.fusionnet import AlphaBlending, FusionNet, ModalityAttention
from ivfuse.train.recipe_fusionnet import TargetAwareLoss, degrade_boxes, fusionnet_recipe, keeps_labels

SHARED = Path(__file__).resolve().parents[3] / "shared"  # tests/models/x.py -> repo -> its parent


def tiny(**kw) -> FusionNet:
    cfg = {"widths": (4, 6, 8), "enc_blocks": (0, 1, 1), "dec_blocks": (1, 1), "attn_kernel": 3, "blend_space": "pixel"}
    cfg.update(kw)
    return FusionNet(**cfg)


def pair(b: int = 2, h: int = 17, w: int = 23, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


@pytest.mark.parametrize("hw", [(1, 1), (5, 3), (17, 23), (33, 8)])
def test_shapes_and_ranges_at_odd_sizes(hw):
    torch.manual_seed(0)
    model = tiny().eval()
    ir, vis = pair(2, *hw)
    with torch.no_grad():
        fused, maps = model(ir, vis, return_maps=True)
        plain = model(ir, vis)
    assert fused.shape == ir.shape
    assert torch.equal(fused, plain)
    assert set(maps) == {"attention", "alpha"}
    for t in (fused, *maps.values()):
        assert t.shape == ir.shape
        assert torch.isfinite(t).all()
        assert t.min() >= 0 and t.max() <= 1


def test_alpha_in_unit_interval_even_for_extreme_logits():
    blend = AlphaBlending(4, residual_scale=0.0)
    with torch.no_grad():
        blend.head.bias.fill_(50.0)
    feats = torch.randn(1, 4, 6, 7) * 100
    ir, vis = pair(1, 6, 7)
    fused, alpha = blend(feats, ir, vis)
    assert alpha.min() >= 0 and alpha.max() <= 1
    # alpha -> 1: the pure blend returns the infrared image.
    assert torch.allclose(fused, ir, atol=1e-4)


def test_pure_blend_lies_between_the_inputs():
    torch.manual_seed(1)
    model = tiny(residual_scale=0.0).eval()
    ir, vis = pair(2, 19, 21)
    with torch.no_grad():
        fused, maps = model(ir, vis, return_maps=True)
    lo, hi = torch.minimum(ir, vis), torch.maximum(ir, vis)
    assert (fused >= lo - 1e-6).all() and (fused <= hi + 1e-6).all()
    assert torch.allclose(fused, maps["alpha"] * ir + (1 - maps["alpha"]) * vis, atol=1e-6)


def test_modality_attention_weights_the_two_streams():
    att = ModalityAttention(3, kernel=3)
    f_ir, f_vis = torch.randn(2, 3, 5, 6), torch.randn(2, 3, 5, 6)
    fused, a = att(f_ir, f_vis)
    assert a.shape == (2, 1, 5, 6)
    assert torch.allclose(fused, a * f_ir + (1 - a) * f_vis, atol=1e-6)
    same, _ = att(f_ir, f_ir)
    assert torch.allclose(same, f_ir, atol=1e-6)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = tiny().train()
    ir, vis = pair(2, 16, 16)
    fused = model(ir, vis)
    loss = (fused - ir).pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_input_validation():
    model = tiny()
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError):
        model(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
    with pytest.raises(ValueError):
        FusionNet(widths=(4, 8), dec_blocks=(1, 1))
    with pytest.raises(ValueError):
        ModalityAttention(4, kernel=4)


def test_shared_encoder_has_fewer_parameters():
    sep = sum(p.numel() for p in tiny().parameters())
    shared = sum(p.numel() for p in tiny(share_encoder=True).parameters())
    assert shared < sep


def test_registered_variants():
    assert {"fusionnet", "fusionnet_cpu"} <= set(list_models("fusionnet*"))
    cpu = create_model("fusionnet_cpu")
    paper = create_model("fusionnet")
    n_cpu = sum(p.numel() for p in cpu.parameters())
    n_paper = sum(p.numel() for p in paper.parameters())
    assert n_cpu * 4 < 1_000_000  # float32 weights under 1 MB
    assert n_paper > 5 * n_cpu
    assert cpu.pad_multiple == 8 and paper.pad_multiple == 4


# ---------------------------------------------------------------- target-aware loss


def batch(h: int = 24, w: int = 24, seed: int = 0) -> dict:
    ir, vis = pair(2, h, w, seed)
    roi = torch.zeros(2, 1, h, w)
    roi[:, :, 4:12, 6:16] = 1
    return {"ir": ir, "vis": vis, "roi": roi}


def test_roi_weight_zero_equals_global_loss():
    b = batch()
    fused = torch.rand(2, 1, 24, 24)
    loss0, terms0 = TargetAwareLoss(roi_weight=0.0)(fused, {}, b)
    loss_global, _ = TargetAwareLoss(roi_weight=0.0)(fused, {}, {k: v for k, v in b.items() if k != "roi"})
    assert torch.allclose(loss0, loss_global)
    assert torch.allclose(loss0, terms0["global"])
    loss1, terms1 = TargetAwareLoss(roi_weight=2.0)(fused, {}, b)
    assert torch.allclose(loss1, terms1["global"] + 2.0 * terms1["roi"])
    assert terms1["roi"] > 0


def test_roi_terms_ignore_pixels_outside_the_boxes():
    b = batch()
    fused = torch.rand(2, 1, 24, 24)
    # Pixels far enough from the box that the 11x11 SSIM window and 3x3 Sobel do not reach it.
    far = torch.ones_like(b["roi"], dtype=torch.bool)
    far[:, :, 0:18, 0:22] = False
    changed_far = fused.clone()
    changed_far[far] = 1 - changed_far[far]
    crit = TargetAwareLoss(roi_weight=1.0)
    _, t = crit(fused, {}, b)
    _, t_far = crit(changed_far, {}, b)
    assert torch.allclose(t["roi"], t_far["roi"], atol=1e-6)
    assert not torch.allclose(t["global"], t_far["global"])


def test_roi_intensity_term_only_sees_roi_pixels():
    b = batch()
    crit = TargetAwareLoss(ssim=0.0, gradient=0.0, intensity=1.0, roi_weight=1.0)
    target = torch.maximum(b["ir"], b["vis"])
    fused = torch.where(b["roi"] > 0, target, torch.zeros_like(target))  # perfect inside, wrong outside
    _, terms = crit(fused, {}, b)
    assert float(terms["roi"]) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["global"]) > 0.1


def test_empty_roi_gives_zero_roi_term_and_keeps_the_graph():
    b = batch()
    b["roi"] = torch.zeros_like(b["roi"])
    fused = torch.rand(2, 1, 24, 24, requires_grad=True)
    loss, terms = TargetAwareLoss(roi_weight=3.0)(fused, {}, b)
    assert float(terms["roi"]) == 0.0 and "roi_ssim" not in terms
    loss.backward()
    assert fused.grad is not None


def test_roi_ssim_is_one_for_a_perfect_roi():
    b = batch()
    b["vis"] = b["ir"].clone()
    _, terms = TargetAwareLoss()(b["ir"].clone(), {}, b)
    assert float(terms["roi_ssim"]) == pytest.approx(1.0, abs=1e-5)


def test_one_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = tiny().train()
    b = batch(24, 24)
    crit = TargetAwareLoss(roi_weight=1.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(6):
        fused, maps = model(b["ir"], b["vis"], return_maps=True)
        loss, _ = crit(fused, maps, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_thinning_drops_whole_images_and_jitter_moves_boxes():
    b = batch()
    b["boxes"] = [torch.tensor([[6.0, 4.0, 16.0, 12.0]]), torch.tensor([[6.0, 4.0, 16.0, 12.0]])]
    b["name"] = ["a", "b"]
    fused = torch.zeros(2, 1, 24, 24)
    full = TargetAwareLoss(roi_keep=1.0).region(b, fused)
    assert torch.equal(full, b["roi"])
    none = TargetAwareLoss(roi_keep=0.0).region(b, fused)
    assert none.sum() == 0
    rebuilt = TargetAwareLoss(roi_keep=1.0, roi_jitter=1e-9).region(b, fused)
    assert torch.equal(rebuilt, b["roi"])  # re-rasterised boxes match the engine's ROI
    names = [f"img{i}" for i in range(400)]
    kept = sum(keeps_labels(n, 0.25) for n in names)
    assert 60 < kept < 140
    assert [keeps_labels(n, 0.25) for n in names] == [keeps_labels(n, 0.25) for n in names]
    moved = degrade_boxes(np.array([[10.0, 10.0, 20.0, 30.0]]), 0.5, np.random.default_rng(0))
    assert not np.allclose(moved, [[10.0, 10.0, 20.0, 30.0]])
    assert np.all(moved[:, 2] > moved[:, 0]) and np.all(moved[:, 3] > moved[:, 1])


def test_recipe_uses_the_target_aware_loss():
    for preset in ("cpu", "paper"):
        cfg = fusionnet_recipe(preset)
        assert cfg.loss.name == "fusionnet_target_aware"
        assert cfg.loss.kwargs["roi_weight"] > 0
    with pytest.raises(ValueError):
        fusionnet_recipe("nope")


@pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="../shared is not available")
def test_shipped_weights_fuse_a_real_pair():
    from ivfuse.models.registry import get_model_entry

    card = get_model_entry("fusionnet_cpu").card()
    if card is None or not card.available():
        pytest.skip("fusionnet_cpu weights not shipped yet")
    from ivfuse.io import load_pair

    folder = SHARED / "data" / "test" / "tno"
    name = min(p.name for p in (folder / "ir").iterdir())
    p = load_pair(folder / "ir" / name, folder / "vi" / name)
    model = create_model("fusionnet_cpu", pretrained=True)
    ir, vis = p.ir, p.vis  # the whole pair: the alpha map is near-binary, a small crop may take one source only
    with torch.no_grad():
        fused, maps = model(ir, vis, return_maps=True)
    assert fused.shape == ir.shape
    alpha = maps["alpha"]
    assert 0.05 < float(alpha.mean()) < 0.95
    # both sources used
    assert float((alpha > 0.5).float().mean()) > 0.02 and float((alpha < 0.5).float().mean()) > 0.02
    assert float(fused.std()) > 0.01


def test_fuse_save_maps_writes_attention_and_alpha(tmp_path):
    from ivfuse.api import fuse
    from ivfuse.io import read_array

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, size=(21, 30), dtype=np.uint8)
    vis = rng.integers(0, 256, size=(21, 30), dtype=np.uint8)
    out = tmp_path / "fused.png"
    fuse(ir, vis, model=tiny(), output=out, save_maps=True, device="cpu")
    for name in ("fused", "fused_attention", "fused_alpha"):
        arr = read_array(tmp_path / f"{name}.png")
        assert arr.shape[:2] == (21, 30)
