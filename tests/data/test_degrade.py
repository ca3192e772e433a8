"""Label degradation for the weak-label study: a seeded data transform, reproducible and resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ivfuse.data import (
    DataConfig,
    DatasetError,
    DegradeBoxes,
    PairedDataset,
    PairSampler,
    boxes_to_mask,
    jitter_boxes,
    keeps_labels,
    sample_seed,
)
from ivfuse.io import write_image
from ivfuse.losses import build_loss
from ivfuse.train.config import OptimizerConfig, ScheduleConfig, Stage, apply_dotted, apply_overrides, config_from_dict
from ivfuse.train.recipe_fusionnet import fusionnet_loss_spec
from ivfuse.train.recipes import make_config

H, W = 32, 40
BOXES = [(4.0, 3.0, 16.0, 14.0), (20.0, 12.0, 34.0, 28.0)]


def write_labelled(root: Path, n: int = 6, seed: int = 0) -> Path:
    """n pairs with warm blobs in the infrared, textured visible images, two YOLO boxes each."""
    rng = np.random.default_rng(seed)
    for sub in ("ir", "vi", "labels"):
        (root / sub).mkdir(parents=True)
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(n):
        ir = 0.2 + 0.05 * rng.standard_normal((H, W))
        for x0, y0, x1, y1 in BOXES:
            ir[int(y0) : int(y1), int(x0) : int(x1)] = 0.8
        vis = 0.5 + 0.3 * np.sin(xx / rng.uniform(2, 5)) * np.cos(yy / rng.uniform(2, 5))
        write_image(root / "ir" / f"{i:03d}.png", np.clip(ir, 0, 1))
        write_image(root / "vi" / f"{i:03d}.png", np.clip(vis, 0, 1))
        rows = [f"0 {(x0 + x1) / 2 / W} {(y0 + y1) / 2 / H} {(x1 - x0) / W} {(y1 - y0) / H}"
                for x0, y0, x1, y1 in BOXES]
        (root / "labels" / f"{i:03d}.txt").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    return write_labelled(tmp_path_factory.mktemp("degrade") / "pairs")


def _data(path, **degrade) -> DataConfig:
    return DataConfig(path=str(path), crop=24, batch_size=2, hflip=True, vflip=True, degrade=DegradeBoxes(**degrade))


# ------------------------------------------------------------------------------------ the transform


def test_transform_is_a_function_of_its_seeds():
    t = DegradeBoxes(jitter=0.3, seed=5)
    boxes = np.array(BOXES, dtype=np.float32)
    a, kept_a = t(boxes, "001", 123)
    b, kept_b = DegradeBoxes(jitter=0.3, seed=5)(boxes, "001", 123)
    assert kept_a and kept_b
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, boxes)
    assert np.abs(a - boxes).max() <= 0.3 * 16 * 1.5 + 1e-4  # by at most jitter x size (centre + half the rescale)
    assert not np.allclose(t(boxes, "001", 124)[0], a)  # another sample seed
    assert not np.allclose(DegradeBoxes(jitter=0.3, seed=6)(boxes, "001", 123)[0], a)  # another study seed
    unchanged, kept = DegradeBoxes()(boxes, "001", 123)
    assert kept and np.array_equal(unchanged, boxes) and not DegradeBoxes().active
    dropped, kept = DegradeBoxes(keep=0.0)(boxes, "001", 123)
    assert not kept and dropped.shape == (0, 4)


def test_keep_is_a_stable_fraction_of_the_images():
    names = [f"img{i}" for i in range(400)]
    kept = [keeps_labels(n, 0.25, seed=1) for n in names]
    assert 60 < sum(kept) < 140
    assert kept == [DegradeBoxes(keep=0.25, seed=1)(np.zeros((1, 4), np.float32), n, s)[1]
                    for s, n in enumerate(names)]  # the sample seed does not choose the images
    assert kept != [keeps_labels(n, 0.25, seed=2) for n in names]
    moved = jitter_boxes(np.array([[10.0, 10.0, 20.0, 30.0]]), 0.5, np.random.default_rng(0))
    assert np.all(moved[:, 2] > moved[:, 0]) and np.all(moved[:, 3] > moved[:, 1])


@pytest.mark.parametrize("bad", [{"keep": 1.5}, {"keep": -0.1}, {"jitter": -1.0}])
def test_bad_settings_are_refused_before_any_work(bad, labelled):
    with pytest.raises(ValueError, match="keep must lie in"):
        DegradeBoxes(**bad).check()
    with pytest.raises(DatasetError, match="data.degrade"):
        PairedDataset(config=_data(labelled, **bad))


# ------------------------------------------------------------------------------------ in the dataset


def test_dataset_boxes_are_reproducible_per_seed_epoch_position(labelled):
    ds = PairedDataset(config=_data(labelled, jitter=0.3, seed=2))
    again = PairedDataset(config=_data(labelled, jitter=0.3, seed=2))
    clean = PairedDataset(config=_data(labelled))
    seen = []
    for epoch, position in [(0, 0), (0, 1), (1, 0), (3, 5)]:
        key = (1, sample_seed(7, epoch, position))
        a, b, c = ds[key], again[key], clean[key]
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["roi"], b["roi"])
        assert torch.equal(a["ir"], c["ir"]) and torch.equal(a["mask"], c["mask"])  # same crop, mask untouched
        assert len(a["boxes"]) == len(c["boxes"]) > 0 and not torch.allclose(a["boxes"], c["boxes"])
        expect = torch.from_numpy(boxes_to_mask(a["boxes"].numpy(), 24, 24))[None].float()
        assert torch.equal(a["roi"], expect)  # the ROI follows the jittered boxes
        assert a["has_boxes"]
        seen.append(a["boxes"] - c["boxes"])  # the jitter itself, whatever the crop
    for i in range(len(seen)):
        for j in range(i + 1, len(seen)):
            assert not torch.allclose(seen[i], seen[j]), (i, j)  # other (epoch, position): other jitter


def test_sampler_and_indexing_give_the_same_degraded_boxes(labelled):
    ds = PairedDataset(config=_data(labelled, jitter=0.25))
    sampler = PairSampler(ds, 2, seed=3)
    sampler.set_epoch(1)
    keys = list(sampler)
    sampler.set_start(1)  # a resumed run skips the first batch and sees the rest unchanged
    assert list(sampler) == keys[2:]
    for key in keys[2:]:
        assert torch.equal(ds[key]["boxes"], ds[key]["boxes"])


def test_unkept_images_lose_boxes_and_roi_at_every_step(labelled):
    ds = PairedDataset(config=_data(labelled, keep=0.5, seed=0))
    clean = PairedDataset(config=_data(labelled))
    names = ds.names()
    kept = {n: keeps_labels(n, 0.5, 0) for n in names}
    assert 0 < sum(kept.values()) < len(names)
    for epoch in range(3):
        for i, n in enumerate(names):
            key = (i, sample_seed(0, epoch, i))
            s, c = ds[key], clean[key]
            assert torch.equal(s["mask"], c["mask"])
            if kept[n]:
                assert torch.equal(s["boxes"], c["boxes"]) and torch.equal(s["roi"], c["roi"]) and s["has_boxes"]
            else:
                assert s["boxes"].shape == (0, 4) and s["roi"].sum() == 0 and not s["has_boxes"]
                assert c["roi"].sum() > 0


def test_validation_images_keep_their_labels(labelled):
    val = PairedDataset(config=_data(labelled, keep=0.0, jitter=0.5), train=False)
    ref = PairedDataset(config=_data(labelled), train=False)
    for i in range(len(val)):
        assert torch.equal(val[i]["boxes"], ref[i]["boxes"]) and torch.equal(val[i]["roi"], ref[i]["roi"])


# ------------------------------------------------------------------------------------ old spellings


def test_old_loss_spellings_become_the_data_transform():
    cfg = apply_dotted(make_config("fusionnet_cpu", "cpu"),
                       ["loss.kwargs.roi_keep=0.5", "loss.kwargs.roi_jitter=0.25", "loss.kwargs.roi_seed=3"])
    assert cfg.data.degrade == DegradeBoxes(keep=0.5, jitter=0.25, seed=3)
    assert not {"roi_keep", "roi_jitter", "roi_seed"} & set(cfg.loss.kwargs)
    build_loss(cfg.loss)  # the loss is built without them
    toml = {"loss": {"kwargs": {"roi_jitter": 0.1}}, "stages": [{"name": "main", "length": 5,
                                                                 "loss": {"name": "fusionnet_target_aware",
                                                                          "kwargs": {"roi_keep": 0.75}}}]}
    cfg = apply_overrides(make_config("fusionnet_cpu", "cpu"), toml)
    assert (cfg.data.degrade.keep, cfg.data.degrade.jitter) == (0.75, 0.1)
    assert "roi_keep" not in cfg.stages[0].loss.kwargs
    old_run = {"model": "fusionnet_cpu", "loss": {"name": "fusionnet_target_aware", "kwargs": {"roi_jitter": 0.2}}}
    assert config_from_dict(old_run).data.degrade.jitter == 0.2  # a run's config.json from before the move
    other = config_from_dict({"loss": {"name": "fusion", "kwargs": {"roi_jitter": 0.2}}})
    assert other.loss.kwargs == {"roi_jitter": 0.2} and not other.data.degrade.active  # only that loss had them
    new = apply_dotted(make_config("fusionnet_cpu", "cpu"), ["data.degrade.jitter=0.3"])
    assert new.data.degrade.jitter == 0.3


# ------------------------------------------------------------------------------------ resume


def _run_config(path, **degrade):
    cfg = make_config("tiny_cnn", "cpu")
    cfg.data = _data(path, **degrade)
    cfg.data.crop = 16
    cfg.loss = fusionnet_loss_spec(roi_weight=4.0)  # the ROI weighs: degraded boxes change the weights
    cfg.threads = 1
    cfg.stages = [Stage("main", 4, optimizer=OptimizerConfig("adam", lr=5e-3), schedule=ScheduleConfig("cosine"))]
    cfg.checkpoint_every, cfg.log_every, cfg.val_every = 2, 1, 0
    cfg.model_kwargs = {"width": 8, "depth": 1}
    return cfg


def test_resumed_run_with_jitter_is_bit_identical(labelled, tmp_path):
    """4 steps straight == 2 steps, stop, resume from the checkpoint, 2 more (3 steps an epoch: mid-epoch)."""
    from ivfuse.train.loop import train

    cfg = _run_config(labelled, keep=0.5, jitter=0.4, seed=1)
    full = train(cfg, tmp_path / "full", progress=False)
    part = train(cfg, tmp_path / "part", progress=False, interrupt_at=2)
    assert part.weights is None and part.steps == 2
    done = train(cfg, tmp_path / "part", resume=True, progress=False)
    assert done.steps == 4 and [r["step"] for r in done.history] == [3, 4]  # resumed, not restarted
    a, b = load_file(str(full.weights)), load_file(str(done.weights))
    assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == []
    plain = load_file(str(train(_run_config(labelled), tmp_path / "plain", progress=False).weights))
    assert any(not torch.equal(a[k], plain[k]) for k in a)  # the degradation did reach the training


def test_the_loss_on_its_own_degrades_without_state():
    """TargetAwareLoss(roi_keep=..., roi_jitter=...) outside the engine: the same batch gets the same ROI."""
    from ivfuse.train.recipe_fusionnet import TargetAwareLoss

    boxes = [torch.tensor(BOXES), torch.tensor(BOXES[:1])]
    roi = torch.from_numpy(np.stack([boxes_to_mask(b.numpy(), H, W) for b in boxes]))[:, None].float()
    batch = {"roi": roi, "boxes": boxes, "name": ["a", "b"]}
    like = torch.zeros(2, 1, H, W)
    loss = TargetAwareLoss(roi_jitter=0.4, roi_seed=2)
    first = loss.region(batch, like)
    assert torch.equal(first, loss.region(batch, like))
    assert torch.equal(first, TargetAwareLoss(roi_jitter=0.4, roi_seed=2).region(batch, like))
    assert not torch.equal(first, roi)
