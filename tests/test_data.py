"""Paired training dataset: crops, flips, labels moved with them, parsers, pseudo-labels, sampling, checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ivfuse.data import (
    DatasetError,
    PairedDataset,
    PairSampler,
    boxes_to_mask,
    collate_pairs,
    crop_boxes,
    find_label_sources,
    flip_boxes,
    pseudo_labels,
    read_coco,
    read_voc,
    read_yolo,
    rot90_boxes,
)
from ivfuse.io import write_image
from ivfuse.train.config import DataConfig, PseudoLabelConfig

H, W = 40, 56


def _coord_pair(h=H, w=W):
    """ir encodes the column, vis the row: a crop reveals exactly where it came from."""
    cols = np.tile(np.arange(w, dtype=np.uint8), (h, 1))
    rows = np.tile(np.arange(h, dtype=np.uint8)[:, None], (1, w))
    return cols, rows


def make_dataset(root, n=4, h=H, w=W, boxes=None, masks=False, vis_rgb=False):
    """Write n pairs (and optional labels) under root; returns root."""
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    for i in range(n):
        ir, vis = _coord_pair(h, w)
        if vis_rgb:
            vis = np.stack([vis] * 3, -1)
        write_image(root / "ir" / f"{i:03d}.png", ir)
        write_image(root / "vi" / f"{i:03d}.png", vis)
    box = (10.0, 6.0, 30.0, 20.0)  # x0, y0, x1, y1
    if boxes == "yolo":
        (root / "labels").mkdir()
        for i in range(n):
            cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
            bw, bh = (box[2] - box[0]) / w, (box[3] - box[1]) / h
            (root / "labels" / f"{i:03d}.txt").write_text(f"0 {cx} {cy} {bw} {bh}\n")
    elif boxes == "voc":
        (root / "Annotations").mkdir()
        for i in range(n):
            (root / "Annotations" / f"{i:03d}.xml").write_text(
                f"<annotation><object><name>car</name><bndbox><xmin>{box[0] + 1:g}</xmin><ymin>{box[1] + 1:g}</ymin>"
                f"<xmax>{box[2]:g}</xmax><ymax>{box[3]:g}</ymax></bndbox></object></annotation>"
            )
    elif boxes == "coco":
        images = [{"id": i + 1, "file_name": f"{i:03d}.png", "width": w, "height": h} for i in range(n)]
        anns = [{"id": i + 1, "image_id": i + 1, "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                 "category_id": 1, "iscrowd": 0} for i in range(n)]
        (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns}))
    if masks:
        (root / "masks").mkdir()
        m = np.zeros((h, w), np.uint8)
        m[5:15, 30:50] = 3  # class index map: non-zero = foreground
        for i in range(n):
            write_image(root / "masks" / f"{i:03d}.png", m)
    return root


def _cfg(**kw):
    c = DataConfig(crop=16, batch_size=2, hflip=True, vflip=True, rot90=True)
    for k, v in kw.items():
        setattr(c, k, v)
    return c


# ---------------------------------------------------------------------------------- parsers


def test_read_yolo(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("# comment\n0 0.5 0.5 0.5 0.25\n\n2 0.1 0.1 0.3 0.1 0.2 0.4  # polygon\n")
    b = read_yolo(f, 100, 80)
    np.testing.assert_allclose(b[0], [25, 30, 75, 50])
    np.testing.assert_allclose(b[1], [10, 8, 30, 32])
    assert read_yolo(tmp_path / "missing.txt", 10, 10).shape == (0, 4)
    f.write_text("0 0.5 0.5 0.5\n")
    with pytest.raises(DatasetError, match="line 1"):
        read_yolo(f, 10, 10)
    f.write_text("0 a b c d\n")
    with pytest.raises(DatasetError, match="a.txt"):
        read_yolo(f, 10, 10)


def test_read_voc(tmp_path):
    f = tmp_path / "a.xml"
    f.write_text("<annotation><size><width>50</width></size>"
                 "<object><name>p</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>2</ymin>"
                 "<xmax>10</xmax><ymax>20</ymax></bndbox></object>"
                 "<object><name>q</name><bndbox><xmin>5.5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>9</ymax></bndbox>"
                 "</object></annotation>")
    b = read_voc(f)
    np.testing.assert_allclose(b, [[0, 1, 10, 20], [4.5, 5, 7, 9]])
    assert boxes_to_mask(b[:1], 30, 30).sum() == 10 * 19  # 1-based inclusive -> 10 columns, 19 rows
    f.write_text("<annotation><object>")
    with pytest.raises(DatasetError, match="VOC"):
        read_voc(f)


def test_read_coco(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({
        "images": [{"id": 7, "file_name": "train/001.jpg"}, {"id": 8, "file_name": "002.png"}],
        "annotations": [{"image_id": 7, "bbox": [1, 2, 3, 4]}, {"image_id": 7, "bbox": [0, 0, 1, 1]},
                        {"image_id": 99, "bbox": [0, 0, 1, 1]}],
    }))
    d = read_coco(f)
    np.testing.assert_allclose(d["train/001"], [[1, 2, 4, 6], [0, 0, 1, 1]])
    np.testing.assert_allclose(d["001"], d["train/001"])
    assert d["002"].shape == (0, 4)
    f.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="not a COCO"):
        read_coco(f)


def test_box_geometry():
    b = np.array([[2.0, 3.0, 6.0, 5.0]])
    m = boxes_to_mask(b, 8, 10)
    assert m.sum() == 8 and m[3:5, 2:6].all()
    np.testing.assert_allclose(crop_boxes(b, 4, 4, 4, 4), [[0, 0, 2, 1]])
    assert crop_boxes(b, 7, 0, 3, 3).shape == (0, 4)  # fully outside: dropped
    np.testing.assert_allclose(flip_boxes(b, 10, 8, True), [[4, 3, 8, 5]])
    np.testing.assert_allclose(flip_boxes(b, 10, 8, False), [[2, 3, 6, 5]])
    img = torch.from_numpy(m)
    for k in range(4):
        rotated = torch.rot90(img, k, dims=(-2, -1)).numpy()
        hh, ww = rotated.shape
        assert (boxes_to_mask(rot90_boxes(b, 10, 8, k), hh, ww) == rotated).all(), k
    assert boxes_to_mask(np.array([[3.2, 3.2, 3.4, 3.4]]), 8, 8).sum() == 1  # sub-pixel box marks its pixel


# ---------------------------------------------------------------------------------- pseudo-labels


def test_pseudo_labels_find_warm_blob():
    rng = np.random.default_rng(0)
    ir = 0.2 + 0.02 * rng.standard_normal((60, 80))
    ir[20:30, 40:55] = 0.9
    mask, boxes = pseudo_labels(ir, PseudoLabelConfig())
    assert boxes.shape == (1, 4)
    x0, y0, x1, y1 = boxes[0]
    assert 36 <= x0 <= 40 and 55 <= x1 <= 59 and 16 <= y0 <= 20 and 30 <= y1 <= 34
    assert mask[22:28, 42:53].all() and mask.sum() < 300
    flat_mask, flat_boxes = pseudo_labels(np.full((30, 30), 0.5) + 0.01 * rng.standard_normal((30, 30)))
    assert not flat_mask.any() and flat_boxes.shape == (0, 4)
    many = np.zeros((64, 64))
    for i in range(6):
        many[4 + 10 * i: 8 + 10 * i, 4:8] = 1.0
    _, b = pseudo_labels(many, PseudoLabelConfig(max_regions=3, box_margin=0))
    assert len(b) == 3


# ---------------------------------------------------------------------------------- dataset


def _locate(sample):
    """(x, y, hflip?, vflip?) of a crop of the coordinate pair, for rot90 k=0."""
    cols = np.rint(sample["ir"][0].numpy() * 255).astype(int)
    rows = np.rint(sample["vis"][0].numpy() * 255).astype(int)
    return cols, rows


def test_crops_within_bounds_and_exact(tmp_path):
    ds = PairedDataset(make_dataset(tmp_path / "d"), _cfg(rot90=False))
    for seed in range(40):
        s = ds[(seed % len(ds), seed)]
        assert s["ir"].shape == (1, 16, 16) and s["vis"].shape == (1, 16, 16)
        cols, rows = _locate(s)
        # every row of ir holds the same consecutive run of columns (possibly mirrored)
        assert (cols == cols[0]).all() and (rows.T == rows[:, 0]).all()
        run = np.sort(cols[0])
        assert (np.diff(run) == 1).all() and run[0] >= 0 and run[-1] < W
        run = np.sort(rows[:, 0])
        assert (np.diff(run) == 1).all() and run[0] >= 0 and run[-1] < H


def test_crop_positions_cover_the_image(tmp_path):
    ds = PairedDataset(make_dataset(tmp_path / "d", n=1), _cfg(hflip=False, vflip=False, rot90=False))
    xs = {int(np.rint(ds[(0, s)]["ir"][0, 0, 0].item() * 255)) for s in range(300)}
    assert min(xs) == 0 and max(xs) == W - 16  # both extremes reachable, never beyond


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco"])
def test_labels_move_with_the_crop(tmp_path, fmt):
    root = make_dataset(tmp_path / "d", boxes=fmt, masks=True)
    assert find_label_sources(root).box_format == fmt
    ds = PairedDataset(root, _cfg(crop=24))
    full_roi = boxes_to_mask(np.array([[10.0, 6.0, 30.0, 20.0]]), H, W)
    full_mask = np.zeros((H, W), bool)
    full_mask[5:15, 30:50] = True
    seen_box = 0
    for seed in range(60):
        s = ds[(0, seed)]
        assert s["has_boxes"] and s["has_mask"]
        roi = s["roi"][0].numpy().astype(bool)
        # the ROI raster equals the raster of the moved boxes
        assert (boxes_to_mask(s["boxes"].numpy(), 24, 24) == roi).all()
        # and both equal the full-image labels under the same crop/flip/rotation, recovered from the coordinates
        cols = np.rint(s["ir"][0].numpy() * 255).astype(int)
        rows = np.rint(s["vis"][0].numpy() * 255).astype(int)
        assert (full_roi[rows, cols] == roi).all()
        assert (full_mask[rows, cols] == s["mask"][0].numpy().astype(bool)).all()
        seen_box += len(s["boxes"]) > 0
    assert seen_box > 10


def test_seed_determinism(tmp_path):
    ds = PairedDataset(make_dataset(tmp_path / "d"), _cfg())
    a, b, c = ds[(1, 123)], ds[(1, 123)], ds[(1, 124)]
    for k in ("ir", "vis", "roi", "mask", "boxes"):
        assert torch.equal(a[k], b[k])
    assert any(not torch.equal(a[k], c[k]) for k in ("ir", "vis"))
    s1, s2 = PairSampler(ds, 2, seed=5), PairSampler(ds, 2, seed=5)
    s1.set_epoch(3)
    s2.set_epoch(3)
    assert list(s1) == list(s2)
    s2.set_epoch(4)
    assert list(s1) != list(s2)


def test_sampler_shards_and_resume_offset(tmp_path):
    ds = PairedDataset(make_dataset(tmp_path / "d", n=5), _cfg())
    shards = [PairSampler(ds, 2, num_replicas=2, rank=r, seed=1) for r in range(2)]
    for s in shards:
        s.set_epoch(2)
    items = [list(s) for s in shards]
    assert shards[0].steps_per_epoch == 2 and all(len(i) == 4 for i in items)  # ceil(5 / 4) batches, wrapped
    assert {i for i, _ in items[0] + items[1]} == set(range(5))  # every pair seen in the epoch
    assert not {sd for _, sd in items[0]} & {sd for _, sd in items[1]}  # distinct augmentation seeds
    shards[0].set_start(1)
    assert list(shards[0]) == items[0][2:] and len(shards[0]) == 2


def test_uncached_equals_cached(tmp_path):
    root = make_dataset(tmp_path / "d", boxes="coco", masks=True)
    a = PairedDataset(root, _cfg(cache="yes"))
    b = PairedDataset(root, _cfg(cache="no"))
    assert len(a._cache) == len(a) and not b._cache
    for key in ((0, 1), (3, 77)):
        sa, sb = a[key], b[key]
        for k in ("ir", "vis", "roi", "mask", "boxes"):
            assert torch.equal(sa[k], sb[k]), k


def test_batch_dict_contract(tmp_path):
    ds = PairedDataset(make_dataset(tmp_path / "d", boxes="yolo", vis_rgb=True), _cfg())
    batch = collate_pairs([ds[(0, 1)], ds[(2, 2)]])
    for k in ("ir", "vis", "roi", "mask"):
        t = batch[k]
        assert t.shape == (2, 1, 16, 16) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1, k
    assert set(batch["roi"].unique().tolist()) <= {0.0, 1.0}
    assert batch["name"] == ["000", "002"] and len(batch["boxes"]) == 2
    assert batch["has_boxes"].tolist() == [True, True] and batch["has_mask"].tolist() == [False, False]


def test_same_luminance_as_inference(tmp_path):
    from ivfuse.io import load_pair

    root = tmp_path / "d"
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    rng = np.random.default_rng(0)
    write_image(root / "ir" / "a.png", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    write_image(root / "vi" / "a.png", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))
    ds = PairedDataset(root, _cfg(), train=False)
    s, p = ds[0], load_pair(root / "ir" / "a.png", root / "vi" / "a.png")
    assert torch.equal(s["ir"], p.ir[0]) and torch.equal(s["vis"], p.vis[0])


def test_pseudo_label_modes(tmp_path):
    root = make_dataset(tmp_path / "d", boxes="voc")
    auto = PairedDataset(root, _cfg(masks_from_boxes=False), train=False)[0]
    assert auto["has_boxes"] and not auto["has_mask"]
    assert auto["mask"].sum() > 0  # pseudo-mask from the infrared (the right half is warm)
    never = PairedDataset(root, _cfg(pseudo=PseudoLabelConfig(mode="never"), masks_from_boxes=False), train=False)[0]
    assert never["mask"].sum() == 0 and never["roi"].sum() == auto["roi"].sum()
    always = PairedDataset(root, _cfg(pseudo=PseudoLabelConfig(mode="always")), train=False)[0]
    assert not always["has_boxes"]
    assert PairedDataset(root, _cfg(boxes=""), train=False)[0]["has_boxes"] is False


def test_small_images_are_padded(tmp_path):
    ds = PairedDataset(make_dataset(tmp_path / "d", n=1, h=9, w=30, boxes="yolo"), _cfg(crop=16))
    s = ds[(0, 3)]
    assert s["ir"].shape == (1, 16, 16) and torch.isfinite(s["ir"]).all()


# ---------------------------------------------------------------------------------- fail fast


def test_no_pairs(tmp_path):
    (tmp_path / "d" / "ir").mkdir(parents=True)
    (tmp_path / "d" / "vi").mkdir()
    write_image(tmp_path / "d" / "ir" / "a.png", np.zeros((4, 4), np.uint8))
    write_image(tmp_path / "d" / "vi" / "b.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DatasetError, match="no infrared/visible pairs"):
        PairedDataset(tmp_path / "d", _cfg())
    with pytest.raises(DatasetError, match="not found"):
        PairedDataset(tmp_path / "missing", _cfg())
    with pytest.raises(DatasetError, match="no infrared/visible subfolders"):
        PairedDataset(tmp_path, _cfg())


def test_bad_pairs_reported_together(tmp_path):
    root = make_dataset(tmp_path / "d", n=4, masks=True)
    write_image(root / "ir" / "001.png", np.zeros((10, 10), np.uint8))  # size mismatch
    (root / "vi" / "002.png").write_bytes((root / "vi" / "002.png").read_bytes()[:60])  # truncated
    write_image(root / "masks" / "003.png", np.zeros((5, 5), np.uint8))  # mask of the wrong size
    with pytest.raises(DatasetError) as err:
        PairedDataset(root, _cfg())
    msg = str(err.value)
    assert "3 of 4" in msg and "001" in msg and "size mismatch" in msg and "002" in msg and "003" in msg
    ok = PairedDataset(root, _cfg(resize=True, masks=""), max_pairs=2)  # --resize fixes 001
    assert len(ok) == 2


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco"])
def test_boxes_without_mask_files_are_rasterised_into_the_mask(tmp_path, fmt):
    root = make_dataset(tmp_path / "d", boxes=fmt)
    full = DataConfig(crop=max(H, W), batch_size=1, hflip=False, vflip=False, rot90=False)
    item = PairedDataset(root, full, train=False)[0]
    assert item["has_boxes"] and not item["has_mask"]
    # The mask is the box (x 10..30, y 6..20), exactly the ROI, not the infrared pseudo-mask.
    assert torch.equal(item["mask"], item["roi"])
    assert item["mask"][0, 6:20, 10:30].all() and item["mask"].sum() == 20 * 14
    pseudo = PairedDataset(root, _cfg(masks_from_boxes=False, crop=max(H, W), hflip=False, vflip=False, rot90=False),
                           train=False)[0]
    assert not torch.equal(pseudo["mask"], item["mask"])
