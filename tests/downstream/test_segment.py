"""ivfuse downstream segment: masks, scores, input checks (pure Python) and a tiny training (needs torchvision).

The synthetic task: every pair holds a warm square (class 1) seen only in the infrared and a bright
bar (class 2) seen only in the visible image; the rest is background (class 0). So the visible
input can learn class 2 only, the infrared class 1 only, and a fused image (max) both.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ivfuse.cli import main
from ivfuse.data import DatasetError
from ivfuse.downstream import (
    confusion_matrix,
    parse_fused,
    parse_sources,
    prepare_segmentation,
    read_class_mask,
    scores_from_confusion,
)
from ivfuse.downstream.report import SEGMENT_METRICS, aggregate, table_latex, table_markdown

SIZE = 64


def _dataset(root: Path, n: int, rng: np.random.Generator, masks: bool = True, folder: str = "labels") -> Path:
    for d in ("ir", "vi", folder):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ir = (rng.random((SIZE, SIZE)) * 40).astype(np.uint8)
        vis = (rng.random((SIZE, SIZE, 3)) * 50).astype(np.uint8)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        x0, y0 = int(rng.integers(0, SIZE // 2 - 16)), int(rng.integers(0, SIZE - 16))
        ir[y0:y0 + 16, x0:x0 + 16] = 230
        mask[y0:y0 + 16, x0:x0 + 16] = 1
        x1, y1 = int(rng.integers(SIZE // 2, SIZE - 24)), int(rng.integers(0, SIZE - 12))
        vis[y1:y1 + 12, x1:x1 + 24] = 200
        mask[y1:y1 + 12, x1:x1 + 24] = 2
        Image.fromarray(ir).save(root / "ir" / f"p{i:02d}.png")
        Image.fromarray(vis).save(root / "vi" / f"p{i:02d}.png")
        if masks:
            Image.fromarray(mask).save(root / folder / f"p{i:02d}.png")
    return root


@pytest.fixture
def splits(tmp_path, rng):
    return _dataset(tmp_path / "train", 8, rng), _dataset(tmp_path / "test", 4, rng)


# ------------------------------------------------------------------ masks and scores


def test_read_class_mask_gray_palette_rgb(tmp_path):
    ids = np.array([[0, 1, 2], [8, 255, 3]], dtype=np.uint8)
    Image.fromarray(ids).save(tmp_path / "g.png")
    pal = Image.fromarray(ids, mode="L").convert("P")
    pal.putpalette([v for k in range(256) for v in ((37 * k) % 256, (91 * k) % 256, 7)])
    pal.save(tmp_path / "p.png")
    Image.fromarray(np.repeat(ids[:, :, None], 3, axis=2)).save(tmp_path / "rgb.png")
    for name in ("g.png", "p.png", "rgb.png"):
        np.testing.assert_array_equal(read_class_mask(tmp_path / name), ids)  # palette: the index is the class
    colour = np.zeros((2, 3, 3), np.uint8)
    colour[0, 0] = (128, 64, 128)
    Image.fromarray(colour).save(tmp_path / "c.png")
    with pytest.raises(DatasetError, match=r"c\.png': colour-coded mask"):
        read_class_mask(tmp_path / "c.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"bad\.png': cannot read the mask"):
        read_class_mask(tmp_path / "bad.png")


def test_confusion_and_iou_by_hand_with_ignore():
    label = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 1]])
    conf = confusion_matrix(label, pred, 4)
    assert conf.sum() == 6  # the two 255 pixels are left out
    assert conf[0].tolist() == [1, 1, 0, 0] and conf[1].tolist() == [0, 2, 0, 0] and conf[2].tolist() == [1, 0, 1, 0]
    s = scores_from_confusion(conf)
    # class 0: TP 1, FP 1 (a 2 read as 0), FN 1 -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2
    np.testing.assert_allclose(s["iou"][:3], [1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(s["iou"][3]) and math.isnan(s["acc"][3])  # neither labelled nor predicted
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    np.testing.assert_allclose(s["acc"][:3], [1 / 2, 1, 1 / 2])
    assert s["pixel_acc"] == pytest.approx(4 / 6)
    pred_only = scores_from_confusion(confusion_matrix(np.zeros((2, 2), int), np.array([[0, 3], [0, 0]]), 4))
    assert pred_only["iou"][3] == 0.0 and math.isnan(pred_only["acc"][3])  # predicted, never labelled: IoU 0


def test_segment_tables_rows_and_columns():
    runs = [{"input": n, "seed": k, "iou": {"0": 0.9, "1": v, "mean": (0.9 + v) / 2},
             "acc": {"0": 1, "1": v, "mean": 0.5}}
            for n, vals in (("visible", (0.2, 0.4)), ("max", (0.6, 0.8))) for k, v in enumerate(vals)]
    t = aggregate(runs, ["visible", "max"], ["0", "1", "mean"], SEGMENT_METRICS)
    assert t["mean"]["iou"]["max"]["1"] == pytest.approx(0.7) and t["std"]["iou"]["max"]["1"] == pytest.approx(
        math.sqrt(0.02))
    md = table_markdown(t, metrics=SEGMENT_METRICS)
    assert "### IoU (%)" in md and "### Acc (%)" in md
    assert "| max | 2 | 90.0 ± 0.0 | **70.0 ± 14.1** | **80.0 ± 7.1** |" in md
    assert r"{IoU (\%)} & Acc (\%)" in table_latex(t, metrics=SEGMENT_METRICS)


# ------------------------------------------------------------------ input checks


def test_masks_found_classes_inferred_and_missing_mask_skipped(tmp_path, splits):
    train, test = splits
    (train / "labels" / "p05.png").unlink()
    warned = []
    prep = prepare_segmentation(train, test, parse_sources("vis,ir") + [parse_fused("max")], tmp_path / "out",
                                progress=False, warn=warned.append)
    assert prep.names == ["0", "1", "2"]  # the largest id in the masks + 1
    assert [i.name for i in prep.splits["train"].images] == [f"p{i:02d}" for i in range(8) if i != 5]
    assert len(warned) == 1 and "p05.png" in warned[0] and "without a label file" in warned[0]
    assert [p.parent.name for _, p in prep.images["infrared"]["test"]] == ["ir"] * 4
    assert all(p.parent == tmp_path / "out" / "fused" / "max" / "train" for _, p in prep.images["max"]["train"])
    named = prepare_segmentation(train, test, parse_sources("vis"), tmp_path / "out2", names=["bg", "warm", "bar"],
                                 warn=lambda m: None)
    assert named.names == ["bg", "warm", "bar"]


def test_segmentation_labels_folder_and_classes_txt(tmp_path, rng):
    train = _dataset(tmp_path / "train", 3, rng, folder="Segmentation_labels")
    test = _dataset(tmp_path / "test", 2, rng, folder="Segmentation_labels")
    (train / "Segmentation_labels" / "classes.txt").write_text("unlabelled\nwarm\nbar\nspare\n")
    prep = prepare_segmentation(train, test, parse_sources("ir"), tmp_path / "out")
    assert prep.names == ["unlabelled", "warm", "bar", "spare"] and prep.splits["test"].label_dir.name == \
        "Segmentation_labels"


def test_class_id_out_of_range_names_the_mask(tmp_path, splits):
    train, test = splits
    with pytest.raises(DatasetError, match=r"p00\.png': class id 2 is out of range 0\.\.1"):
        prepare_segmentation(train, test, parse_sources("vis"), tmp_path / "out", num_classes=2)
    m = np.asarray(Image.open(test / "labels" / "p02.png")).copy()
    m[0, 0] = 255  # the ignore index is allowed
    m[1, 1] = 7
    Image.fromarray(m).save(test / "labels" / "p02.png")
    with pytest.raises(DatasetError, match=r"test.labels.p02\.png': class id 7 is out of range 0\.\.2"):
        prepare_segmentation(train, test, parse_sources("vis"), tmp_path / "out", num_classes=3)


def test_mask_of_another_size_names_the_mask(tmp_path, splits):
    train, test = splits
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(train / "labels" / "p03.png")
    with pytest.raises(DatasetError, match=r"p03\.png': mask is 48x32, its image '.*p03\.png' is 64x64"):
        prepare_segmentation(train, test, parse_sources("vis"), tmp_path / "out")


def test_empty_test_split_and_cli_one_line(tmp_path, rng, capsys):
    train = _dataset(tmp_path / "train", 3, rng)
    test = _dataset(tmp_path / "test", 2, rng, masks=False)
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(test / "labels" / "other.png")  # a mask of no pair
    with pytest.raises(ValueError, match="empty test split"):
        prepare_segmentation(train, test, parse_sources("vis"), tmp_path / "out", warn=lambda m: None)
    rc = main(["downstream", "segment", "--train", str(train), "--test", str(test), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "empty test split" in err[-1] and str(test) in err[-1]
    assert len([line for line in err if line.startswith("ivfuse: error")]) <= 1


def test_missing_torchvision_names_the_extra(monkeypatch):
    import sys

    from ivfuse._extras import MissingExtraError
    from ivfuse.downstream.runs import needs_module
    from ivfuse.downstream.segnet import build_network

    with pytest.raises(MissingExtraError, match=r"pip install 'ivfuse\[segment\]'"):
        needs_module("ivfuse_no_such_module", "segment", "ivfuse downstream segment")()
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now fails
    with pytest.raises(MissingExtraError, match=r"ivfuse downstream segment needs the 'torchvision' package"):
        build_network("lraspp_mobilenet_v3_large", 3)


def test_cli_help_lists_the_segment_options(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["downstream", "segment", "--help"])
    out = capsys.readouterr().out
    assert ex.value.code == 0 and "--num-classes" in out and "deeplabv3_resnet50" in out


# ------------------------------------------------------------------ network (needs torchvision)


def test_weights_loaded_by_name_and_shape(tmp_path):
    pytest.importorskip("torchvision")
    import torch
    from safetensors.torch import save_file

    from ivfuse.downstream.segnet import build_network

    torch.manual_seed(0)
    src, _ = build_network("lraspp_mobilenet_v3_large", 3)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": src.state_dict()}, tmp_path / "w.pt")
    for f in ("w.safetensors", "w.pt"):
        net, loaded = build_network("lraspp_mobilenet_v3_large", 5, tmp_path / f)  # another class count
        own = net.state_dict()
        assert loaded == len(own) - 4  # the two classifier convs (weight, bias) keep their random start
        key = "backbone.0.0.weight"
        assert torch.equal(own[key], src.state_dict()[key])
    torch.save({"x": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt': no tensor name and shape matches"):
        build_network("lraspp_mobilenet_v3_large", 3, tmp_path / "other.pt")


def test_same_seed_same_result_and_fused_image_of_another_size(tmp_path, splits):
    pytest.importorskip("torchvision")
    from ivfuse.downstream import SegmentSettings
    from ivfuse.downstream.segnet import train_and_evaluate

    train, test = splits
    prep = prepare_segmentation(train, test, parse_sources("ir"), tmp_path / "out")
    tr, te = prep.images["infrared"]["train"], prep.images["infrared"]["test"]
    s = SegmentSettings(epochs=1, imgsz=32, batch=4, device="cpu")
    a = train_and_evaluate(tr, te, prep.names, 3, s, "cpu")
    b = train_and_evaluate(tr, te, prep.names, 3, s, "cpu")
    assert a["iou"] == b["iou"] and a["loss"] == b["loss"] and a["steps"] == 2
    odd = tmp_path / "odd.png"
    Image.fromarray(np.zeros((40, 64), np.uint8)).save(odd)
    with pytest.raises(ValueError, match=r"odd\.png': image is 64x40, its mask '.*p01\.png' is 64x64"):
        train_and_evaluate(tr[:1] + [(tr[1][0], odd)] + tr[2:], te, prep.names, 0, s, "cpu")


def test_end_to_end_fused_sees_what_each_modality_misses(tmp_path, splits, capsys):
    pytest.importorskip("torchvision")
    train, test = splits
    out = tmp_path / "out"
    args = ["downstream", "segment", "--train", str(train), "--test", str(test), "--fused", "max",
            "--epochs", "20", "--imgsz", "64", "--batch", "4", "--device", "cpu", "--threads", "1", "-q",
            "-o", str(out)]
    assert main(args) == 0
    first = (out / "segment.csv").read_text()
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0  # every run is kept, nothing trained again
    assert capsys.readouterr().out.count("kept from") == 3 and (out / "segment.csv").read_text() == first
    doc = json.loads((out / "segment.json").read_text())
    assert doc["table"]["inputs"] == ["visible", "infrared", "max"]
    assert doc["table"]["columns"] == ["0", "1", "2", "mean"]
    assert doc["images"] == {"train": 8, "test": 4}
    iou = {r["input"]: r["iou"] for r in doc["runs"]}
    background = doc["test_pixels"]["0"] / sum(doc["test_pixels"].values())
    trivial = background / 3  # all background: IoU = its share for class 0, 0 for the others
    for name in ("visible", "infrared", "max"):
        assert iou[name]["mean"] > trivial + 0.05, (name, iou[name])
    assert iou["infrared"]["1"] > iou["visible"]["1"] + 0.2  # the warm squares are in the infrared only
    assert iou["visible"]["2"] > iou["infrared"]["2"] + 0.2  # the bars in the visible only
    assert iou["max"]["1"] > iou["visible"]["1"] + 0.2 and iou["max"]["2"] > iou["infrared"]["2"] + 0.1  # both
    md = (out / "segment.md").read_text()
    assert "### IoU (%)" in md and md.count("| max | 1 |") == 2
    csv = (out / "segment.csv").read_text().splitlines()
    assert csv[0] == "input,metric,class,mean,std,seeds,values" and len(csv) == 1 + 3 * 2 * 4
    assert r"\begin{tabular}" in (out / "segment.tex").read_text()
    if any(p.name == "segment_per_class.png" for p in out.iterdir()):
        assert Image.open(out / "segment_per_class.png").size[0] > 100
