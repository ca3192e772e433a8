"""PoMAI: shapes at odd sizes, the LSH grouping, stages and freezing, ablations, recipe, shipped weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ivfuse.models import create_model
from ivfuse.models.blocks import ChannelLayerNorm, RestormerBlock
from ivfuse.models.pomai import NGMM, PoMAI, lsh_buckets, sort_by_bucket, unsort
from ivfuse.train.config import OptimizerConfig, ScheduleConfig
from ivfuse.train.recipe_pomai import ABLATIONS, PAPER_LOSS, ablation_config, two_stages
from ivfuse.train.recipes import make_config
from ivfuse.train.stages import apply_stage

# this file sits one level deeper than tests/, so /work/main is parents[2]
SHARED = Path(__file__).resolve().parents[2].parent / "shared"

TINY = {"dim": 8, "encoder_blocks": 1, "decoder_blocks": 1, "num_heads": 2, "group_size": 16, "n_hashes": 2,
        "max_buckets": 8}


def tiny(**kw) -> PoMAI:
    torch.manual_seed(0)
    return PoMAI(**{**TINY, **kw})


def pair(b: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g)


# ---------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(("stride", "detail"), [(1, False), (2, False), (4, True)])
@pytest.mark.parametrize("shape", [(2, 45, 67), (1, 33, 97), (1, 1, 1), (1, 5, 3)])
def test_output_shape_and_range_at_odd_sizes(stride, detail, shape):
    model = tiny(stride=stride, detail_skip=detail).eval()
    ir, vis = pair(*shape)
    with torch.no_grad():
        fused, maps = model(ir, vis, return_maps=True)
    assert fused.shape == ir.shape
    assert torch.isfinite(fused).all() and fused.min() >= 0 and fused.max() <= 1
    assert set(maps) == {"gate"} and maps["gate"].shape == ir.shape
    assert maps["gate"].min() >= 0 and maps["gate"].max() <= 1


def test_registered_variants_run_at_odd_size():
    ir, vis = pair(1, 33, 97)
    model = create_model("pomai_cpu")
    with torch.no_grad():
        out = model(ir, vis)
    assert out.shape == (1, 1, 33, 97)
    big = create_model("pomai", dim=16, num_heads=2)  # paper layout at a test-friendly width
    assert len(big.encoder.blocks) == 4 and len(big.decoder.blocks) == 4
    with torch.no_grad():
        assert big(*pair(1, 17, 19)).shape == (1, 1, 17, 19)


def test_bad_inputs_raise():
    model = tiny()
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError):
        model(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
    with pytest.raises(ValueError):
        model.set_stage("stage3")


def test_eval_is_batch_independent():
    # Determinism in eval mode (two calls equal) is part of tests/models/test_contract.py.
    model = tiny().eval()
    ir, vis = pair(2, 12, 20)
    with torch.no_grad():
        a = model(ir, vis)
        single = model(ir[1:], vis[1:])
    torch.testing.assert_close(a[1:], single, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- LSH / NGMM
def test_lsh_identical_vectors_share_a_bucket():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(1, 10, 6, generator=g)
    x = torch.cat((base, base, 3.0 * base), dim=1)  # copies and a positive rescaling
    rot = torch.randn(6, 3, 4, generator=g)
    buckets = lsh_buckets(x, rot)
    assert buckets.shape == (1, 3, 30)
    assert torch.equal(buckets[..., :10], buckets[..., 10:20])
    assert torch.equal(buckets[..., :10], buckets[..., 20:])
    assert buckets.min() >= 0 and buckets.max() < 8
    assert len(buckets.unique()) > 1  # random vectors do not all collapse into one bucket


def test_sort_is_a_permutation_and_unsort_restores():
    g = torch.Generator().manual_seed(2)
    buckets = torch.randint(0, 5, (2, 3, 37), generator=g)
    order, inverse = sort_by_bucket(buckets)
    assert torch.equal(order.sort(dim=-1).values, torch.arange(37).expand(2, 3, 37))
    sorted_b = buckets.gather(-1, order)
    assert (sorted_b[..., 1:] >= sorted_b[..., :-1]).all()
    feats = torch.randn(2, 3, 37, 4, generator=g)
    shuffled = feats.gather(-2, order.unsqueeze(-1).expand_as(feats))
    assert torch.equal(unsort(shuffled, inverse), feats)


def test_ngmm_masks_padding_single_group_equals_dense_attention():
    # group_size > L: one group padded from 35 to 64 positions; padding must get no attention weight.
    torch.manual_seed(3)
    ngmm = NGMM(dim=4, group_size=64, n_hashes=1, attend_neighbours=False).eval()
    x = torch.randn(1, 4, 5, 7)
    with torch.no_grad():
        out = ngmm(x)
        f_r = ngmm.right(x).flatten(2).transpose(1, 2)
        f_l = ngmm.left(x).flatten(2).transpose(1, 2)
        attn = (f_r @ F.normalize(f_r, dim=-1).transpose(1, 2)).softmax(-1)
        ref = x + (attn @ f_l).transpose(1, 2).reshape(1, 4, 5, 7)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("length", [1, 15, 16, 17, 50])
def test_ngmm_any_length(length):
    ngmm = NGMM(dim=4, group_size=16, n_hashes=2)
    x = torch.randn(2, 4, 1, length, requires_grad=True)
    y = ngmm(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------------------------------------- stages
def _stages():
    return {s.name: s for s in two_stages(1, 1, "steps", OptimizerConfig(), ScheduleConfig())}


def _loss(model: PoMAI) -> torch.Tensor:
    ir, vis = pair(2, 12, 16)
    return (model(ir, vis) - torch.maximum(ir, vis)).abs().mean()


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
@pytest.mark.parametrize(("stride", "detail"), [(1, False), (4, True)])
def test_every_trainable_parameter_gets_a_gradient(stage, stride, detail):
    model = tiny(stride=stride, detail_skip=detail).train()
    params = apply_stage(model, _stages()[stage])
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    if stage == "stage1":
        assert names and not any(n.startswith("micm.") for n in names)
        assert {n.split(".")[0] for n in names} == {"encoder", "ngmm", "camn", "decoder"}
    else:
        assert names and all(n.startswith("micm.") for n in names)
    _loss(model).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, missing
    assert len(params) == len(names)


def test_stage_two_leaves_stage_one_weights_bit_identical():
    model = tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = apply_stage(model, _stages()["stage2"])
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        _loss(model).backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("micm.") for k in changed)


def test_stage_paths():
    model = tiny().eval()
    ir, vis = pair(1, 12, 12)
    model.set_stage("stage1")
    with torch.no_grad():
        _, maps1 = model(ir, vis, return_maps=True)
    model.set_stage("stage2")
    with torch.no_grad():
        _, maps2 = model(ir, vis, return_maps=True)
    assert maps1 == {} and "gate" in maps2


# ---------------------------------------------------------------------------------------------- ablations, recipe
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_builds_and_trains(name):
    cfg = ablation_config(name, "cpu", "pomai_cpu")
    torch.manual_seed(0)
    model = PoMAI(**{**TINY, **cfg.model_kwargs})
    for stage in cfg.stages:
        params = apply_stage(model, stage)
        assert params
        _loss(model).backward()
        assert all(p.grad is not None for p in params)
    model.eval()
    with torch.no_grad():
        assert model(*pair(1, 9, 11)).shape == (1, 1, 9, 11)
    if name == "wo_micm":
        assert model.micm is None and [s.name for s in cfg.stages] == ["stage1"]
    if name == "wo_two_stage":
        assert [s.name for s in cfg.stages] == ["joint"] and cfg.stages[0].train == ["*"]
    if name == "wo_freeze":
        assert cfg.stages[1].train == ["*"]
    if name in ("wo_ngmm", "wo_camn"):
        assert getattr(model, name[3:]) is None


def test_paper_recipe_matches_the_paper():
    cfg = make_config("pomai", "paper")
    assert cfg.loss.name == "fusion" and cfg.loss.kwargs == PAPER_LOSS == {
        "ssim": 5.0, "mse": 1.0, "intensity": 1.0, "gradient": 10.0}
    assert cfg.data.crop == 128 and cfg.data.batch_size == 16
    s1, s2 = cfg.stages
    assert (s1.name, s1.length, s1.unit, s1.freeze) == ("stage1", 80, "epochs", ["micm"])
    assert (s2.name, s2.length, s2.unit, s2.train) == ("stage2", 20, "epochs", ["micm"])
    for s in cfg.stages:
        assert s.optimizer.name == "adam" and s.optimizer.lr == 1e-4
        assert (s.schedule.name, s.schedule.step_size, s.schedule.gamma) == ("step", 20, 0.5)
    assert make_config("pomai_cpu", "cpu").data.crop % create_model("pomai_cpu").pad_multiple == 0


# ---------------------------------------------------------------------------------------------- blocks
def test_channel_layernorm_matches_layer_norm():
    norm = ChannelLayerNorm(5)
    with torch.no_grad():
        norm.weight.uniform_()
        norm.bias.uniform_()
    x = torch.randn(2, 5, 3, 4)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (5,), norm.weight, norm.bias).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), ref, atol=1e-5, rtol=1e-5)


def test_restormer_block_gradcheck_and_channels_last():
    torch.manual_seed(0)
    block = RestormerBlock(2, num_heads=1, ffn_expansion=1.0).double()
    x = torch.randn(1, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), fast_mode=True)
    with torch.no_grad():
        torch.testing.assert_close(block(x.contiguous(memory_format=torch.channels_last)), block(x))


def test_channels_last_does_not_change_the_result():
    model = tiny().eval()
    ir, vis = pair(1, 14, 18)
    with torch.no_grad():
        a = model(ir, vis)
        model.channels_last = False
        b = model(ir, vis)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- shipped weights
def test_shipped_weights_load_and_fuse():
    from ivfuse.models.registry import get_model_entry

    card = get_model_entry("pomai_cpu").card()
    if card is None or not card.available():
        pytest.skip("pomai_cpu weights not shipped yet")
    assert card.path().stat().st_size < 1_000_000
    model = create_model("pomai_cpu", pretrained=True)
    ir, vis = pair(1, 31, 45)
    with torch.no_grad():
        out = model(ir, vis)
    assert out.shape == ir.shape and 0 <= out.min() and out.max() <= 1
    assert out.std() > 1e-3  # a trained network does not output a constant


def test_fuses_a_real_pair_at_its_size():
    if not SHARED.exists():
        pytest.skip("../shared not available")
    from PIL import Image

    from ivfuse.api import fuse

    root = SHARED / "data" / "test" / "tno"
    irs = sorted((root / "ir").glob("*"))
    if not irs:
        pytest.skip("no TNO pairs")
    vis_path = next((root / "vi").glob(irs[0].stem + ".*"))
    out = fuse(irs[0], vis_path, model=tiny(stride=4, n_hashes=1), tile=None)
    with Image.open(vis_path) as im:
        w, h = im.size
    assert out.shape[:2] == (h, w)


# ---------------------------------------------------------------------------------------------- detail refinement
def test_detail_refinement_starts_as_the_model_without_it_and_learns():
    plain = tiny(stride=4, detail_skip=True).eval()
    refined = tiny(stride=4, detail_skip=True, detail_hidden=4).eval()
    state = refined.state_dict()
    new = {k for k in state if k not in plain.state_dict()}
    assert new == {"decoder.refine.0.weight", "decoder.refine.0.bias", "decoder.refine.2.weight",
                   "decoder.refine.2.bias"}
    state.update(plain.state_dict())
    refined.load_state_dict(state)
    ir, vis = pair(1, 21, 30)
    with torch.no_grad():
        assert torch.equal(refined(ir, vis), plain(ir, vis))  # zero-initialised last conv
    refined.train()
    target = torch.maximum(ir, vis)
    (refined(ir, vis) - target).abs().mean().backward()
    assert refined.decoder.refine[2].weight.grad.abs().sum() > 0
    opt = torch.optim.SGD(refined.decoder.refine.parameters(), lr=0.5)
    opt.step()
    with torch.no_grad():
        assert not torch.equal(refined.eval()(ir, vis), plain(ir, vis))


def test_detail_refinement_needs_the_detail_skip():
    with pytest.raises(ValueError, match="detail_hidden needs detail_skip"):
        tiny(stride=4, detail_skip=False, detail_hidden=4)
    with pytest.raises(ValueError, match="detail_hidden must be >= 0"):
        tiny(stride=4, detail_skip=True, detail_hidden=-1)
