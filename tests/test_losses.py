"""Fusion losses: zero where they should be, finite gradients, gradcheck, weighted forms, registry."""

from __future__ import annotations

import pytest
import torch

from ivfuse import losses as L
from ivfuse.filters import gaussian_blur, sobel


def _imgs(b=2, h=24, w=20, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, 1, h, w, generator=g, dtype=dtype) for _ in range(3)]


def _batch(ir, vis, roi=None, mask=None):
    z = torch.zeros_like(ir)
    return {"ir": ir, "vis": vis, "roi": z if roi is None else roi, "mask": z if mask is None else mask}


TERMS = [L.ssim_loss, L.ncc_loss, L.mse_loss, L.intensity_max_loss, L.gradient_max_loss, L.intensity_select_loss]


# ---------------------------------------------------------------------------------- filters


@pytest.mark.parametrize("shape", [(2, 1, 24, 20), (1, 1, 5, 7), (1, 1, 1, 1), (3, 2, 17, 40), (1, 1, 6, 30)])
def test_matrix_filters_equal_ivfuse_filters(shape):
    x = torch.rand(*shape)
    assert torch.allclose(L.blur(x, 1.5, 5), gaussian_blur(x, 1.5, radius=5), atol=1e-6)
    gx, gy = sobel(x)
    assert torch.allclose(L.gradient_magnitude(x), gx.abs() + gy.abs(), atol=1e-5)


def test_ssim_map_identity_and_range():
    x, y, _ = _imgs()
    assert torch.allclose(L.ssim(x, x), torch.ones(2), atol=1e-5)
    m = L.ssim_map(x, y)
    assert m.shape == x.shape and m.max() <= 1 + 1e-5 and m.min() >= -1 - 1e-5
    assert torch.allclose(L.ssim(x, y), L.ssim(y, x), atol=1e-6)


def test_ncc_values():
    x, _, _ = _imgs()
    assert torch.allclose(L.ncc(x, 0.5 * x + 0.1), torch.ones(2), atol=1e-4)
    assert torch.allclose(L.ncc(x, 1 - x), -torch.ones(2), atol=1e-4)
    assert torch.all(L.ncc(x, torch.full_like(x, 0.3)).abs() < 1e-4)  # flat image: 0, no NaN


# ---------------------------------------------------------------------------------- zero / minimal


def test_terms_zero_when_all_equal():
    x, _, _ = _imgs()
    for fn in TERMS:
        assert float(fn(x, x, x)) == pytest.approx(0.0, abs=1e-5), fn.__name__


def test_intensity_and_gradient_zero_at_max():
    ir, vis, _ = _imgs()
    fused = torch.maximum(ir, vis)
    assert float(L.intensity_max_loss(fused, ir, vis)) == 0.0
    assert float(L.intensity_max_loss(0.5 * (ir + vis), ir, vis)) > 0.05
    # An image whose gradient magnitude equals max(|grad I|, |grad V|): pick vis with zero gradient.
    flat = torch.full_like(ir, 0.4)
    assert float(L.gradient_max_loss(ir, ir, flat)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.gradient_max_loss(flat, ir, flat)) > 0.1


def test_intensity_max_on_base_layer_spares_fine_texture():
    # Two sources of equal local mean, one flat and one with a fine +-0.2 checkerboard: the pixel-wise
    # max charges the flat image for the checkerboard's bright squares; on a base layer wider than the
    # checker the flat image matches the brighter base, while a globally darker image still costs.
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = (0.5 + 0.2 * (((yy + xx) % 2) * 2 - 1)).float().view(1, 1, 32, 32)
    flat = torch.full_like(checker, 0.5)
    pixel = float(L.intensity_max_loss(flat, checker, flat))
    base = float(L.intensity_max_loss(flat, checker, flat, base_sigma=4.0))
    assert pixel > 0.09 and base < 0.01
    assert float(L.intensity_max_loss(flat - 0.2, checker, flat, base_sigma=4.0)) > 0.15
    loss = L.FusionLoss(ssim=0, intensity=1, gradient=0, base_sigma=4.0)
    total, _ = loss(flat, {}, {"ir": checker, "vis": flat})
    assert float(total) == pytest.approx(base, abs=1e-6)
    with pytest.raises(ValueError, match="intensity_mode='max'"):
        L.FusionLoss(intensity_mode="select", base_sigma=2.0)
    with pytest.raises(ValueError, match="base_sigma"):
        L.intensity_max_loss(flat, checker, flat, base_sigma=-1.0)


def test_grad_scales_charge_lost_regional_contrast():
    # A bright square on a dark ground (the infrared) and a flat visible image: a copy of the square
    # with its contrast halved keeps sharp Sobel edges only at half strength; the coarse scales add a
    # charge for the lost regional contrast, and nothing for the infrared itself.
    ir = torch.full((1, 1, 48, 48), 0.2)
    ir[..., 16:32, 16:32] = 0.8
    vis = torch.full_like(ir, 0.4)
    faded = 0.5 * ir + 0.25
    plain = L.target_aware_maps(faded, ir, vis)["grad"].mean()
    multi = L.target_aware_maps(faded, ir, vis, grad_scales=(2.0, 4.0))["grad"].mean()
    assert float(multi) > 2 * float(plain) > 0
    assert float(L.target_aware_maps(ir, ir, vis, grad_scales=(2.0, 4.0))["grad"].abs().max()) < 1e-5
    loss = L.TargetAwareLoss(ssim=0, intensity=0, gradient=1, roi_weight=0, grad_scales=[2, 4])
    total, _ = loss(faded, {}, {"ir": ir, "vis": vis})
    assert float(total) == pytest.approx(float(multi), rel=1e-5)
    with pytest.raises(ValueError, match="grad_scales"):
        L.TargetAwareLoss(grad_scales=[0.0])


def test_activity_target_takes_each_region_from_the_structured_source():
    # Left half: the infrared is flat and bright (0.7), the visible dark but textured (0.2 +- 0.1).
    # Right half: the infrared has a warm textured target, the visible is a flat saturated glare (1.0).
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = (((yy // 2 + xx // 2) % 2) * 2 - 1).float().view(1, 1, 64, 64)
    left = (xx < 32).view(1, 1, 64, 64)
    ir = torch.where(left, torch.full_like(checker, 0.7), 0.5 + 0.2 * checker)
    vis = torch.where(left, 0.2 + 0.1 * checker, torch.ones_like(checker))
    w = L.activity_weight(ir, vis, 3.0)
    assert float(w[..., 8:56, 4:20].max()) < 0.05 and float(w[..., 8:56, 44:60].min()) > 0.95
    maps = L.target_aware_maps(vis, ir, vis, base_sigma=3.0, intensity_target="activity")
    assert float(maps["int"][..., 8:56, 4:20].max()) < 0.02  # the dark textured visible is the target
    assert float(L.target_aware_maps(vis, ir, vis, base_sigma=3.0)["int"][..., 8:56, 4:20].min()) > 0.4
    maps = L.target_aware_maps(ir, ir, vis, base_sigma=3.0, intensity_target="activity")
    assert float(maps["int"][..., 8:56, 44:60].max()) < 0.02  # inside the glare the infrared is
    with pytest.raises(ValueError, match="base_sigma"):
        L.TargetAwareLoss(intensity_target="activity")
    with pytest.raises(ValueError, match="intensity_target"):
        L.target_aware_maps(ir, ir, vis, intensity_target="mean")


def test_contrast_target_keeps_the_dark_visible_and_the_hot_infrared():
    # Infrared: a mid-grey background (0.5) with a hot target (0.95) top left. Visible: a dark sky
    # (0.05) over a mid road (0.45). The maximum takes the infrared's grey over the dark sky; the
    # contrast target keeps the sky dark (the visible deviates more from its mean there) and the target hot.
    ir = torch.full((1, 1, 64, 64), 0.5)
    ir[..., 4:20, 4:20] = 0.95
    vis = torch.full_like(ir, 0.45)
    vis[..., :32, :] = 0.05
    target = vis.clone()
    target[..., 4:20, 4:20] = 0.95
    maps = L.target_aware_maps(target, ir, vis, base_sigma=2.0, intensity_target="contrast")
    assert float(maps["int"][..., 8:16, 8:16].max()) < 0.02  # the hot target (blurred edges aside)
    assert float(maps["int"][..., 6:26, 40:60].max()) < 1e-4  # the dark sky stays dark
    plain = L.target_aware_maps(target, ir, vis, base_sigma=2.0)["int"]
    assert float(plain[..., 6:26, 40:60].min()) > 0.4  # the maximum asks for the infrared's grey there
    half = L.target_aware_maps(target, ir, vis, base_sigma=2.0, intensity_target="contrast", contrast_mix=0.5)
    assert float(half["int"][..., 6:26, 40:60].mean()) == pytest.approx(0.5 * float(plain[..., 6:26, 40:60].mean()),
                                                                        rel=1e-4)
    loss = L.TargetAwareLoss(ssim=0, intensity=1, gradient=0, roi_weight=0, base_sigma=2.0,
                             intensity_target="contrast")
    total, _ = loss(target, {}, {"ir": ir, "vis": vis})
    assert float(total) == pytest.approx(float(maps["int"].mean()), rel=1e-5, abs=1e-7)
    with pytest.raises(ValueError, match="base_sigma"):
        L.TargetAwareLoss(intensity_target="contrast")
    with pytest.raises(ValueError, match="contrast_mix"):
        L.TargetAwareLoss(base_sigma=2.0, intensity_target="contrast", contrast_mix=0.0)


def test_mse_minimal_at_mean():
    ir, vis, _ = _imgs()
    best = float(L.mse_loss(0.5 * (ir + vis), ir, vis))
    for t in (0.3, 0.7, 0.0):
        assert float(L.mse_loss(t * ir + (1 - t) * vis, ir, vis)) > best


def test_intensity_select_picks_higher_std():
    ir = torch.rand(1, 1, 16, 16)  # high variance
    vis = torch.full((1, 1, 16, 16), 0.5) + 0.01 * torch.rand(1, 1, 16, 16)
    assert float(L.intensity_select_loss(ir, ir, vis)) == 0.0
    assert float(L.intensity_select_loss(vis, ir, vis)) > 0.0


def test_foreground_bce_minimal_at_mask():
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    at_mask = float(L.foreground_bce(mask, mask))
    assert at_mask < 1e-4
    assert float(L.foreground_bce(torch.full_like(mask, 0.5), mask)) == pytest.approx(0.6931, abs=1e-3)
    logits = (mask * 2 - 1) * 20
    assert float(L.foreground_bce(logits, mask, logits=True)) < 1e-6


def test_roi_loss_only_sees_roi():
    ir, vis, fused = _imgs()
    roi = torch.zeros_like(ir)
    roi[..., 4:12, 4:12] = 1
    fused2 = fused.clone()
    fused2[..., 20:, :] = 0.0  # change only outside the ROI (beyond the SSIM window reach)
    a = float(L.roi_loss(fused, ir, vis, roi))
    b = float(L.roi_loss(fused2, ir, vis, roi))
    assert a == pytest.approx(b, abs=1e-6)
    empty = L.roi_loss(fused.requires_grad_(), ir, vis, torch.zeros_like(ir))
    assert float(empty.detach()) == 0.0
    empty.backward()  # still differentiable
    assert torch.all(fused.grad == 0)


# ---------------------------------------------------------------------------------- weighting


def test_weighted_mean():
    v = torch.tensor([1.0, 3.0]).view(1, 1, 1, 2)
    assert float(L.weighted_mean(v)) == 2.0
    assert float(L.weighted_mean(v, torch.tensor([1.0, 0.0]).view(1, 1, 1, 2))) == 1.0
    assert float(L.weighted_mean(v, torch.tensor([1.0, 3.0]).view(1, 1, 1, 2))) == 2.5
    assert float(L.weighted_mean(v, torch.zeros(1, 1, 1, 2))) == 0.0


def test_mask_weighting_emphasises_foreground():
    ir, vis, fused = _imgs()
    mask = torch.zeros_like(ir)
    mask[..., :8, :] = 1
    w = L.mask_weight(mask, 3.0)
    assert set(w.unique().tolist()) == {1.0, 3.0}
    err_fg = fused.clone()
    err_fg[..., :8, :] = torch.maximum(ir, vis)[..., :8, :]  # perfect on the foreground
    assert float(L.intensity_max_loss(err_fg, ir, vis, w)) < float(L.intensity_max_loss(err_fg, ir, vis))
    # weight 1 everywhere reproduces the plain mean
    for fn in (L.mse_loss, L.intensity_max_loss, L.gradient_max_loss, L.ssim_loss):
        assert float(fn(fused, ir, vis, torch.ones_like(ir))) == pytest.approx(float(fn(fused, ir, vis)), rel=1e-5)


# ---------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("fn", TERMS, ids=lambda f: f.__name__)
def test_gradients_finite(fn):
    ir, vis, fused = _imgs()
    for f in (fused, torch.zeros_like(fused), torch.maximum(ir, vis), ir):  # incl. kinks (|x| at 0)
        f = f.clone().requires_grad_(True)
        fn(f, ir, vis).backward()
        assert torch.isfinite(f.grad).all(), fn.__name__


@pytest.mark.parametrize("fn", TERMS, ids=lambda f: f.__name__)
def test_gradcheck_float64(fn):
    ir, vis, fused = _imgs(b=1, h=6, w=5, seed=3, dtype=torch.float64)
    fused = 0.2 + 0.6 * fused  # away from the L1 kinks at the targets (fixed seed)
    assert torch.autograd.gradcheck(lambda x: fn(x, ir, vis), (fused.requires_grad_(True),), eps=1e-6, atol=1e-5)


def test_gradcheck_bce_and_roi_float64():
    ir, vis, fused = _imgs(b=1, h=6, w=5, seed=4, dtype=torch.float64)
    mask = (ir > 0.5).double()
    roi = torch.zeros_like(ir)
    roi[..., 1:4, 1:4] = 1
    p = (0.1 + 0.8 * fused).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: L.foreground_bce(x, mask), (p,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(lambda x: L.roi_loss(x, ir, vis, roi), (p,), eps=1e-6, atol=1e-5)


def test_bce_gradient_finite_at_extremes():
    mask = (torch.rand(1, 1, 8, 8) > 0.5).float()
    p = torch.cat([torch.zeros(1, 1, 8, 4), torch.ones(1, 1, 8, 4)], -1).requires_grad_(True)
    L.foreground_bce(p, mask).backward()
    assert torch.isfinite(p.grad).all()


# ---------------------------------------------------------------------------------- modules, errors


def test_modules_equal_functions():
    ir, vis, fused = _imgs()
    pairs = [(L.SSIMLoss(), L.ssim_loss), (L.NCCLoss(), L.ncc_loss), (L.MSELoss(), L.mse_loss),
             (L.IntensityMaxLoss(), L.intensity_max_loss), (L.GradientMaxLoss(), L.gradient_max_loss),
             (L.IntensitySelectLoss(), L.intensity_select_loss)]
    for mod, fn in pairs:
        assert float(mod(fused, ir, vis)) == float(fn(fused, ir, vis))
    mask = (ir > 0.5).float()
    assert float(L.ForegroundBCELoss()(fused, mask)) == float(L.foreground_bce(fused, mask))


def test_shape_errors():
    ir, vis, fused = _imgs()
    with pytest.raises(ValueError, match="share one shape"):
        L.mse_loss(fused[..., :10], ir, vis)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        L.ssim_map(fused[0], ir[0])
    with pytest.raises(ValueError, match="differ"):
        L.foreground_bce(fused, ir[..., :5])


def test_odd_sizes_and_half_precision_inputs():
    for h, w in ((1, 1), (3, 2), (13, 31)):
        ir, vis, fused = _imgs(1, h, w)
        for fn in TERMS:
            assert torch.isfinite(fn(fused.half(), ir.half(), vis)), (fn.__name__, h, w)


# ---------------------------------------------------------------------------------- criterion


def test_fusion_loss_contract_and_weights():
    ir, vis, fused = _imgs()
    crit = L.build_loss("fusion")
    loss, terms = crit(fused, {}, _batch(ir, vis))
    assert loss.dim() == 0 and set(terms) == {"ssim", "int", "grad", "loss"}
    assert all(not t.requires_grad for t in terms.values())
    total = float(terms["ssim"] + terms["int"] + terms["grad"])
    assert float(loss) == pytest.approx(total, rel=1e-6)
    pomai = L.build_loss({"name": "fusion", "kwargs": {"ssim": 5, "mse": 1, "intensity": 1, "gradient": 10}})
    loss, t = pomai(fused, {}, _batch(ir, vis))
    assert float(loss) == pytest.approx(float(5 * t["ssim"] + t["mse"] + t["int"] + 10 * t["grad"]), rel=1e-5)


def test_fusion_loss_fgfusion_form_needs_foreground_map():
    ir, vis, fused = _imgs()
    mask = (ir > 0.7).float()
    crit = L.FusionLoss(structure="ncc", ssim=1, intensity_mode="select", intensity=10, gradient=10, bce=5,
                        mask_weight=3)
    with pytest.raises(KeyError, match="foreground"):
        crit(fused, {}, _batch(ir, vis, mask=mask))
    fg = torch.rand_like(ir).requires_grad_(True)
    f = fused.clone().requires_grad_(True)
    loss, terms = crit(f, {"foreground": fg}, _batch(ir, vis, mask=mask))
    assert {"ncc", "int", "grad", "bce", "loss"} <= set(terms)
    loss.backward()
    assert torch.isfinite(fg.grad).all() and torch.isfinite(f.grad).all() and fg.grad.abs().sum() > 0


def test_fusion_loss_target_aware_form():
    ir, vis, fused = _imgs()
    roi = torch.zeros_like(ir)
    roi[..., 2:10, 3:12] = 1
    crit = L.FusionLoss(roi=1.0, roi_weight=3.0, roi_intensity_target="ir")
    loss, terms = crit(fused, {}, _batch(ir, vis, roi=roi))
    assert "roi" in terms and float(terms["roi"]) > 0
    assert float(loss) > float(L.FusionLoss()(fused, {}, _batch(ir, vis, roi=roi))[0]) - 10  # finite, sane


def test_registry():
    assert "fusion" in L.list_losses()
    with pytest.raises(ValueError, match="unknown loss"):
        L.build_loss("nope")
    with pytest.raises(ValueError, match="bad arguments"):
        L.build_loss("fusion", ssimm=1.0)

    @L.register_loss("_test_const")
    class Const(torch.nn.Module):
        def __init__(self, value: float = 1.0):
            super().__init__()
            self.value = value

        def forward(self, fused, maps, batch):
            loss = fused.mean() * 0 + self.value
            return loss, {"loss": loss.detach()}

    crit = L.build_loss("_test_const", value=2.0)
    assert float(crit(torch.rand(1, 1, 4, 4), {}, {})[0]) == 2.0
    with pytest.raises(ValueError, match="already registered"):
        L.register_loss("_test_const")(lambda: None)


def test_paper_objectives_compose_the_one_implementation():
    """FGFusion's and FusionNet's objectives give FusionLoss's numbers (exactly / up to summation order)."""
    ir, vis, fused = _imgs()
    roi = torch.zeros_like(ir)
    roi[..., 2:10, 3:12] = 1
    mask = (ir > 0.6).float()
    fg = {"foreground": torch.rand_like(ir)}
    batch = _batch(ir, vis, roi=roi, mask=mask)
    generic = L.FusionLoss(structure="ncc", intensity_mode="select", intensity=10, gradient=10, bce=5, mask_weight=3)
    assert torch.equal(L.FGFusionLoss()(fused, fg, batch)[0], generic(fused, fg, batch)[0])
    target_aware, terms = L.TargetAwareLoss(roi_weight=1.0)(fused, {}, batch)
    assert float(target_aware) == pytest.approx(float(L.FusionLoss(roi=1.0)(fused, {}, batch)[0]), rel=1e-6)
    maps = L.target_aware_maps(fused, ir, vis)
    assert set(maps) == {"ssim", "int", "int_ir", "grad"} and all(m.shape == ir.shape for m in maps.values())
    assert float(terms["roi"]) == pytest.approx(float(L.roi_loss(fused, ir, vis, roi)), rel=1e-6)


def test_base_layer_intensity_leaves_texture_to_the_gradient_term():
    # Infrared flat and brighter, visible darker with a fine checkerboard texture.
    yy, xx = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    board = ((yy + xx) % 2).float().view(1, 1, 48, 48) * 2 - 1  # zero-mean, period 2 px
    ir = torch.full((1, 1, 48, 48), 0.6)
    vis = 0.4 + 0.1 * board
    textured = 0.6 + 0.1 * board  # the brighter base with the darker source's texture on it
    pixel = L.target_aware_maps(textured, ir, vis)["int"].mean()
    base = L.target_aware_maps(textured, ir, vis, base_sigma=3.0)["int"].mean()
    assert pixel > 0.09  # the pixel-wise maximum (0.6 everywhere) charges the texture as error
    assert base < 0.01 * float(pixel)
    # A fused image that loses the brightness is still charged on the base layer.
    dark = L.target_aware_maps(vis, ir, vis, base_sigma=3.0)["int"].mean()
    assert dark == pytest.approx(0.2, abs=0.01)
    # base_sigma=0 is the pixel-wise term, and the loss module passes it through.
    assert torch.equal(L.target_aware_maps(textured, ir, vis, base_sigma=0.0)["int"],
                       L.target_aware_maps(textured, ir, vis)["int"])
    batch = {"ir": ir, "vis": vis}
    pix_loss, _ = L.TargetAwareLoss(ssim=0, intensity=1, gradient=0)(textured, None, batch)
    base_loss, _ = L.TargetAwareLoss(ssim=0, intensity=1, gradient=0, base_sigma=3.0)(textured, None, batch)
    assert float(base_loss) < 0.01 * float(pix_loss)
    with pytest.raises(ValueError, match="base_sigma"):
        L.TargetAwareLoss(base_sigma=-1)


def test_saturated_visible_gives_way_to_the_infrared():
    ir = torch.full((1, 1, 16, 16), 0.3)
    vis = torch.full((1, 1, 16, 16), 0.5)
    vis[..., :, 8:] = 1.0  # right half over-exposed (glare)
    keep_ir_there = torch.where(vis >= 1.0, ir, vis)
    plain = L.target_aware_maps(keep_ir_there, ir, vis)["int"]
    aware = L.target_aware_maps(keep_ir_there, ir, vis, saturation=0.9)["int"]
    assert float(plain[..., 8:].mean()) == pytest.approx(0.7)  # the plain maximum wants the glare
    assert float(aware.max()) < 1e-6  # saturation-aware: the infrared inside the glare, the visible outside
    # Below the threshold nothing changes.
    assert torch.equal(aware[..., :8], plain[..., :8])
    with pytest.raises(ValueError, match="saturation"):
        L.target_aware_maps(vis, ir, vis, saturation=1.0)
    with pytest.raises(ValueError, match="saturation"):
        L.TargetAwareLoss(saturation=-0.1)


def test_knee_compresses_the_glare_below_white_and_keeps_the_target_monotone():
    ir = torch.full((1, 1, 16, 16), 0.3)
    vis = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous()
    zero = torch.zeros_like(vis)
    # With F = 0 the intensity map is the target itself.
    plain = L.target_aware_maps(zero, ir, vis)["int"][0, 0, 0]
    knee = L.target_aware_maps(zero, ir, vis, knee=0.8, knee_slope=0.25)["int"][0, 0, 0]
    below = vis[0, 0, 0] <= 0.8
    assert torch.equal(knee[below], plain[below])  # nothing changes below the knee
    assert float(knee[-1]) == pytest.approx(0.8 + 0.25 * 0.2)  # white is compressed, not replaced
    assert bool((knee[1:] >= knee[:-1] - 1e-7).all())  # monotone in V: no dark patch inside the glare
    # The loss carries the option, and it is exclusive with the infrared-target treatment.
    batch = {"ir": ir, "vis": vis}
    a, _ = L.TargetAwareLoss(ssim=0, gradient=0, knee=0.8)(zero, None, batch)
    b, _ = L.TargetAwareLoss(ssim=0, gradient=0)(zero, None, batch)
    assert float(a) < float(b)
    with pytest.raises(ValueError, match="knee"):
        L.TargetAwareLoss(knee=0.8, saturation=0.9)
    with pytest.raises(ValueError, match="knee_slope"):
        L.target_aware_maps(zero, ir, vis, knee=0.5, knee_slope=1.5)


def test_alpha_smoothness_prefers_a_gradual_switch_and_spares_source_edges():
    ir = torch.zeros(1, 1, 16, 32)
    vis = torch.zeros(1, 1, 16, 32)
    fused = torch.zeros(1, 1, 16, 32)
    batch = {"ir": ir, "vis": vis}
    step = torch.zeros(1, 1, 16, 32)
    step[..., 16:] = 1.0  # one source left, the other right: a switch within one pixel
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 1, 16, 32).contiguous()
    loss = L.TargetAwareLoss(alpha_smooth=1.0)
    s_step, s_ramp = (float(loss.alpha_smoothness({"alpha": a}, ir, vis)) for a in (step, ramp))
    assert s_step == pytest.approx(1 / 31, rel=1e-5)  # one unit jump per row of 31 differences
    assert s_ramp == pytest.approx(1 / 31 ** 2, rel=1e-4)  # the same change spread over the row
    total, terms = loss(fused, {"alpha": step}, batch)
    plain, _ = L.TargetAwareLoss()(fused, None, batch)
    assert float(total - plain) == pytest.approx(s_step, rel=1e-5)
    assert float(terms["alpha_smooth"]) == pytest.approx(s_step, rel=1e-5)
    # Edge-aware: where a source has an edge at the switch, the switch costs (almost) nothing.
    edge = ir.clone()
    edge[..., 16:] = 1.0
    aware = L.TargetAwareLoss(alpha_smooth=1.0, alpha_smooth_tau=0.05)
    assert float(aware.alpha_smoothness({"alpha": step}, edge, vis)) < 1e-3 * s_step
    assert float(aware.alpha_smoothness({"alpha": step}, ir, vis)) == pytest.approx(s_step, rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        loss(fused, {}, batch)
    with pytest.raises(ValueError, match="alpha_smooth"):
        L.TargetAwareLoss(alpha_smooth=-1.0)
