"""``ivfuse eval --foreground``: foreground maps against rasterised boxes; the YOLO boxes behind ROI-SSIM."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest

from ivfuse.cli import main
from ivfuse.data import boxes_to_mask, read_yolo
from ivfuse.evaluation import (ForegroundScores, foreground_counts, foreground_predictor, roi_source,
                               score_foreground)
from ivfuse.io import find_pairs, write_image

H, W = 40, 48


def _dataset(root, n=3):
    """Pairs whose infrared has one warm rectangle; YOLO boxes of exactly that rectangle."""
    for i in range(n):
        x0, y0, x1, y1 = 8 + 2 * i, 10, 24 + 2 * i, 26
        ir = np.full((H, W), 0.1)
        ir[y0:y1, x0:x1] = 0.95
        vis = np.tile(np.linspace(0.2, 0.8, W), (H, 1))
        write_image(root / "ir" / f"p{i}.png", ir)
        write_image(root / "vi" / f"p{i}.png", vis)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        cx, cy, bw, bh = (x0 + x1) / 2 / W, (y0 + y1) / 2 / H, (x1 - x0) / W, (y1 - y0) / H
        (root / "labels" / f"p{i}.txt").write_text(f"0 {cx} {cy} {bw} {bh}\n")
    return root


def test_foreground_counts_by_hand():
    pred = np.array([[1, 1, 0], [0, 1, 0]], bool)
    truth = np.array([[0, 1, 1], [0, 1, 0]], bool)
    c = foreground_counts(pred, truth)
    assert (c["tp"], c["fp"], c["fn"]) == (2, 1, 1)
    assert c["IoU"] == pytest.approx(0.5) and c["F1"] == pytest.approx(2 / 3)
    empty = foreground_counts(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    assert math.isnan(empty["IoU"]) and empty["tp"] == 0


def test_summary_pools_pixels():
    s = ForegroundScores("m", rows=[
        {"image": "a", "tp": 3, "fp": 1, "fn": 0, "IoU": 0.75, "F1": 6 / 7},
        {"image": "b", "tp": 0, "fp": 4, "fn": 0, "IoU": 0.0, "F1": 0.0},  # no object, 4 false pixels
        {"image": "c", "tp": 0, "fp": 0, "fn": 0, "IoU": float("nan"), "F1": float("nan")},
    ]).summary()
    assert s["IoU"] == pytest.approx(3 / 8) and s["precision"] == pytest.approx(3 / 8)
    assert s["recall"] == 1.0 and s["F1"] == pytest.approx(6 / 11)
    assert s["mean IoU"] == pytest.approx(0.375)  # over a and b; c has nothing to compare


def test_score_foreground_with_a_known_map(tmp_path):
    ds = _dataset(tmp_path / "ds", n=2)
    pairs = find_pairs(ds).pairs

    def left_half(ir, vis):  # probability 0.9 on the left half, 0.5 (not above the threshold) elsewhere
        p = np.full(ir.shape[-2:], 0.5, np.float32)
        p[:, : W // 2] = 0.9
        return p

    res = score_foreground(("half", left_half), pairs, roi_source(ds / "labels"), progress=False)
    assert not res.problems and [r["image"] for r in res.rows] == ["p0", "p1"]
    for i, r in enumerate(res.rows):
        box = np.zeros((H, W), bool)
        box[10:26, 8 + 2 * i:24 + 2 * i] = True
        half = np.zeros((H, W), bool)
        half[:, : W // 2] = True
        assert (r["tp"], r["fp"], r["fn"]) == ((box & half).sum(), (half & ~box).sum(), (box & ~half).sum())


def test_cli_pseudo_finds_the_warm_box(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["eval", str(ds), "--foreground", "pseudo", "-o", str(out), "-q"]) == 0  # labels/ found by itself
    printed = capsys.readouterr().out
    assert "| pseudo | 3 |" in printed
    summary = json.loads((out / "foreground_summary.json").read_text())
    assert summary["pseudo"]["n"] == 3 and summary["pseudo"]["IoU"] > 0.8
    rows = list(csv.DictReader(open(out / "foreground_pseudo.csv")))
    assert len(rows) == 3 and all(int(r["tp"]) + int(r["fn"]) == 16 * 16 for r in rows)


def test_cli_fgfusion_runs_and_counts_every_box_pixel(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds", n=2)
    out = tmp_path / "out"
    assert main(["eval", str(ds), "--foreground", "fgfusion_cpu", "--roi", str(ds / "labels"), "-o", str(out),
                 "-q", "--device", "cpu"]) == 0
    rows = list(csv.DictReader(open(out / "foreground_fgfusion_cpu.csv")))
    assert [r["image"] for r in rows] == ["p0", "p1"]
    assert all(int(r["tp"]) + int(r["fn"]) == 256 for r in rows)
    assert all(0 <= int(r["fp"]) <= H * W - 256 for r in rows)


def test_cli_refusals(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds", n=1)
    assert main(["eval", str(ds), "--foreground", "average", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no foreground map" in err[0] and "fgfusion_cpu" in err[0]
    assert main(["eval", str(ds), "--foreground", "pseudo", "--fused", str(ds / "ir"), "-q"]) == 2
    assert main(["eval", str(ds), "-q"]) == 2
    assert main(["eval", str(ds), "--foreground", "pseudo", "--metrics", "EN", "-q"]) == 2
    shutil.rmtree(ds / "labels")
    assert main(["eval", str(ds), "--foreground", "pseudo", "-q"]) == 1
    assert "needs reference regions" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown model"):
        foreground_predictor("no_such_model")


def test_cli_unreadable_pair_reported(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds", n=2)
    (ds / "vi" / "p1.png").write_bytes(b"broken")
    assert main(["eval", str(ds), "--foreground", "pseudo", "-q"]) == 1
    cap = capsys.readouterr()
    assert "| pseudo | 1 |" in cap.out and "pseudo/p1:" in cap.err


def test_msrs_yolo_boxes_and_foreground(shared_dir, tmp_path):
    src = shared_dir / "data" / "test" / "msrs"
    if not (src / "labels").is_dir():
        pytest.skip("test/msrs has no labels/")
    names = [p.name for p in find_pairs(src).pairs][:3]
    ds = tmp_path / "msrs3"
    for sub, ext in (("ir", ".png"), ("vi", ".png"), ("labels", ".txt")):
        (ds / sub).mkdir(parents=True)
        for n in names:
            if (src / sub / f"{n}{ext}").is_file():
                shutil.copy(src / sub / f"{n}{ext}", ds / sub / f"{n}{ext}")
    roi = roi_source(ds / "labels")
    expect_fg = {}
    for pp in find_pairs(ds).pairs:
        ir = np.zeros((480, 640))
        boxes = roi(pp, ir)
        label = ds / "labels" / f"{pp.name}.txt"
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()] if label.is_file() else []
        assert len(boxes) == len(rows)
        for (x0, y0, x1, y1), (_, cx, cy, bw, bh) in zip(boxes, rows):  # YOLO: normalised centre and size
            assert (x0 + x1) / 2 == pytest.approx(float(cx) * 640, abs=1e-3)
            assert (y1 - y0) == pytest.approx(float(bh) * 480, abs=1e-3)
        expect_fg[pp.name] = int(boxes_to_mask(read_yolo(label, 640, 480), 480, 640).sum())
    out = tmp_path / "out"
    assert main(["eval", str(ds), "--foreground", "fgfusion_cpu", "-o", str(out), "-q", "--device", "cpu"]) == 0
    rows = list(csv.DictReader(open(out / "foreground_fgfusion_cpu.csv")))
    assert {r["image"]: int(r["tp"]) + int(r["fn"]) for r in rows} == expect_fg
