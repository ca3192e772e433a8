"""ivfuse downstream detect: label checks, dataset building and tables (pure Python), and one tiny run."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ivfuse.cli import main
from ivfuse.data import DatasetError
from ivfuse.downstream import (
    InputSpec,
    build_yolo_dataset,
    check_yolo_labels,
    class_names,
    parse_fused,
    parse_sources,
    prepare_inputs,
)
from ivfuse.downstream.detect import DetectSettings
from ivfuse.downstream.report import aggregate, table_latex, table_markdown, write_tables

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def _dataset(root: Path, n: int, rng: np.random.Generator, size: int = 64, labels: bool = True) -> Path:
    """``n`` pairs with one bright square (class 0) or wide bar (class 1) each, and YOLO labels."""
    for d in ("ir", "vi", "labels"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "labels" / "classes.txt").write_text("0 person\n1 car\n")
    for i in range(n):
        ir = (rng.random((size, size)) * 40).astype(np.uint8)
        vis = (rng.random((size, size, 3)) * 60).astype(np.uint8)
        cls = i % 2
        w, h = (10, 20) if cls == 0 else (24, 10)
        x0, y0 = int(rng.integers(2, size - w - 2)), int(rng.integers(2, size - h - 2))
        ir[y0:y0 + h, x0:x0 + w] = 230
        vis[y0:y0 + h, x0:x0 + w] = 180
        Image.fromarray(ir).save(root / "ir" / f"p{i:02d}.png")
        Image.fromarray(vis).save(root / "vi" / f"p{i:02d}.png")
        if labels:
            cx, cy = (x0 + w / 2) / size, (y0 + h / 2) / size
            (root / "labels" / f"p{i:02d}.txt").write_text(f"{cls} {cx:.6f} {cy:.6f} {w / size:.6f} {h / size:.6f}\n")
    return root


@pytest.fixture
def splits(tmp_path, rng):
    return _dataset(tmp_path / "train", 8, rng), _dataset(tmp_path / "test", 4, rng)


# ------------------------------------------------------------------ labels


def test_labels_normalised_rows_and_polygon(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("1 0.5 0.25 0.2 0.1\n# comment\n\n0 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n")
    rows = check_yolo_labels(f, 200, 100, 2)
    assert rows.shape == (2, 5)
    np.testing.assert_allclose(rows[0], [1, 0.5, 0.25, 0.2, 0.1], atol=1e-6)
    np.testing.assert_allclose(rows[1], [0, 0.2, 0.25, 0.2, 0.3], atol=1e-6)  # polygon -> its bounding box


def test_labels_empty_file_is_an_image_without_objects(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("")
    assert check_yolo_labels(f, 10, 10, 3).shape == (0, 5)


@pytest.mark.parametrize("row, problem", [
    ("3 0.5 0.5 0.1 0.1", "out of range 0..2"),
    ("-1 0.5 0.5 0.1 0.1", "out of range"),
    ("1.5 0.5 0.5 0.1 0.1", "out of range"),
    ("x 0.5 0.5 0.1 0.1", "not a number"),
    ("0 0.95 0.5 0.2 0.1", "outside the 100x50 image"),
    ("0 0.5 -0.1 0.2 0.1", "outside"),
    ("0 0.5 0.5 0 0.1", "no area"),
    ("0 0.5 0.5 0.1", "expected 'class cx cy w h'"),
])
def test_labels_bad_rows_name_file_and_line(tmp_path, row, problem):
    f = tmp_path / "bad.txt"
    f.write_text("0 0.5 0.5 0.1 0.1\n" + row + "\n")
    with pytest.raises(DatasetError) as err:
        check_yolo_labels(f, 100, 50, 3)
    msg = str(err.value)
    assert str(f) in msg and "line 2" in msg and problem in msg and "\n" not in msg


def test_labels_rounding_just_outside_is_clipped(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("0 0.95 0.5 0.1004 0.2\n")  # right edge at 1.0002: within the tolerance
    rows = check_yolo_labels(f, 1000, 1000, 1)
    assert rows[0, 1] + rows[0, 3] / 2 == pytest.approx(1.0)


def test_class_names_from_classes_txt_and_override(tmp_path):
    (tmp_path / "classes.txt").write_text("0 person\n1 bicycle\n2 car\n")
    assert class_names(tmp_path) == ["person", "bicycle", "car"]
    (tmp_path / "classes.txt").write_text("person\ntraffic light\n")
    assert class_names(tmp_path) == ["person", "traffic light"]
    assert class_names(tmp_path, ["a", "b", "c"]) == ["a", "b", "c"]
    (tmp_path / "classes.txt").write_text("0 person\n2 car\n")
    with pytest.raises(ValueError, match="expected class id 1"):
        class_names(tmp_path)
    (tmp_path / "classes.txt").unlink()
    with pytest.raises(ValueError, match="--classes"):
        class_names(tmp_path)


# ------------------------------------------------------------------ inputs


def test_parse_sources_and_fused(tmp_path):
    assert [s.kind for s in parse_sources("vis,ir")] == ["vis", "ir"]
    assert [s.name for s in parse_sources("ir, vi, ir")] == ["infrared", "visible"]
    assert parse_sources("") == []
    with pytest.raises(ValueError, match="unknown source 'rgb'"):
        parse_sources("rgb")
    assert parse_fused(f"mine={tmp_path}") == InputSpec("mine", "folder", str(tmp_path))
    assert parse_fused(str(tmp_path)) == InputSpec(tmp_path.name, "folder", str(tmp_path))
    assert parse_fused("gff") == InputSpec("gff", "model", "gff")
    assert parse_fused("G=gff") == InputSpec("G", "model", "gff")
    with pytest.raises(ValueError, match="neither a folder nor a registered model"):
        parse_fused("x=/no/such/folder")
    with pytest.raises(ValueError, match="no weights ship"):
        parse_fused("pomai")  # the paper-size network has no shipped weights


def test_missing_labels_reported_and_skipped(tmp_path, splits):
    train, test = splits
    (train / "labels" / "p03.txt").unlink()
    warned = []
    prep = prepare_inputs(train, test, parse_sources("vis,ir"), tmp_path / "out", warn=warned.append)
    assert [i.name for i in prep.splits["train"].images] == [f"p{i:02d}" for i in range(8) if i != 3]
    assert len(warned) == 1 and "p03.png" in warned[0] and "without a label file" in warned[0]
    assert prep.names == ["person", "car"]
    vis = prep.images["visible"]["train"]
    ir = prep.images["infrared"]["train"]
    assert [p.parent.name for _, p in vis] == ["vi"] * 7 and [p.parent.name for _, p in ir] == ["ir"] * 7
    assert [a.name for a, _ in vis] == [b.name for b, _ in ir]


def test_bad_label_in_test_split_names_the_file(tmp_path, splits):
    train, test = splits
    (test / "labels" / "p01.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match=r"p01\.txt', line 1: class id 5 is out of range 0\.\.1"):
        prepare_inputs(train, test, parse_sources("vis"), tmp_path / "out")


def test_empty_test_split_is_an_error(tmp_path, rng):
    train = _dataset(tmp_path / "train", 4, rng)
    test = _dataset(tmp_path / "test", 3, rng, labels=False)
    with pytest.raises(ValueError, match="empty test split"):
        prepare_inputs(train, test, parse_sources("vis"), tmp_path / "out", warn=lambda m: None)


def test_fused_folder_with_split_subfolders_and_a_missing_image(tmp_path, splits):
    train, test = splits
    fused = tmp_path / "fused"
    for split, root in (("train", train), ("test", test)):
        (fused / split).mkdir(parents=True)
        for p in sorted((root / "ir").glob("*.png")):
            (fused / split / p.name).write_bytes(p.read_bytes())
    (fused / "test" / "p02.png").unlink()
    warned = []
    prep = prepare_inputs(train, test, parse_sources("vis") + [parse_fused(f"F={fused}")], tmp_path / "out",
                          warn=warned.append)
    assert [i.name for i in prep.splits["test"].images] == ["p00", "p01", "p03"]
    assert [i.name for i, _ in prep.images["visible"]["test"]] == ["p00", "p01", "p03"]  # left out of every input
    assert all(p.parent == fused / "test" for _, p in prep.images["F"]["test"])
    assert any("p02 (F)" in w for w in warned)


def test_model_input_fused_on_the_fly_into_out(tmp_path, splits):
    train, test = splits
    out = tmp_path / "out"
    prep = prepare_inputs(train, test, [parse_fused("average")], out, progress=False)
    imgs = prep.images["average"]["test"]
    assert len(imgs) == 4 and all(p.parent == out / "fused" / "average" / "test" for _, p in imgs)
    a = np.asarray(Image.open(imgs[0][1]).convert("L"), dtype=np.float64)
    ir = np.asarray(Image.open(test / "ir" / "p00.png"), dtype=np.float64)
    assert abs(a.mean() - ir.mean()) > 1  # a fused image, not a copy of the infrared


def test_fused_images_of_other_weights_are_fused_again_and_runs_not_kept(tmp_path, splits, monkeypatch):
    from ivfuse.downstream import inputs as inputs_mod
    from ivfuse.downstream.runs import run_key

    train, test = splits
    out = tmp_path / "out"
    spec = parse_fused("average")
    prepare_inputs(train, test, [spec], out, progress=False)
    one = out / "fused" / "average" / "test" / "p00.png"
    marker = one.parent / inputs_mod.FUSED_MARKER
    assert json.loads(marker.read_text()) == {"model": "average", "weights": "training-free"}
    one.write_bytes(b"stale")  # stands for an image of the earlier weights
    notes: list[str] = []
    prepare_inputs(train, test, [spec], out, progress=False, overwrite_fused=False, warn=notes.append)
    assert one.read_bytes() == b"stale"  # same weights: the images are kept
    monkeypatch.setattr(inputs_mod, "model_identity", lambda model: "sha-of-new-weights")
    prep = prepare_inputs(train, test, [spec], out, progress=False, overwrite_fused=False, warn=notes.append)
    assert one.read_bytes()[:4] == b"\x89PNG"  # other weights: every image fused again
    assert any("fused again" in n for n in prep.notes + notes)
    assert json.loads(marker.read_text())["weights"] == "sha-of-new-weights"
    # A finished run of a model input is only kept for the same weights.
    import ivfuse.downstream.runs as runs_mod

    monkeypatch.setattr(runs_mod, "model_identity", lambda model: "a")
    key_a = run_key(spec, 0, DetectSettings(), {"train": 1, "test": 1})
    monkeypatch.setattr(runs_mod, "model_identity", lambda model: "b")
    assert run_key(spec, 0, DetectSettings(), {"train": 1, "test": 1}) != key_a
    src = parse_sources("vis")[0]
    assert "weights" not in run_key(src, 0, DetectSettings(), {"train": 1, "test": 1})


def test_same_name_twice_and_same_folder_twice(tmp_path, splits):
    train, test = splits
    with pytest.raises(ValueError, match="two inputs are named 'visible'"):
        prepare_inputs(train, test, parse_sources("vis") + [InputSpec("visible", "model", "gff")], tmp_path / "o")
    with pytest.raises(ValueError, match="same folder"):
        prepare_inputs(train, train, parse_sources("vis"), tmp_path / "o")


def test_build_yolo_dataset_links_images_and_writes_checked_labels(tmp_path, rng):
    train = _dataset(tmp_path / "train", 10, rng)
    test = _dataset(tmp_path / "test", 2, rng)
    (train / "labels" / "p01.txt").write_text("1 0.5 0.5 0.4 0.2 0.6 0.2 0.6 0.3\n")  # polygon row
    prep = prepare_inputs(train, test, parse_sources("ir"), tmp_path / "out")
    yaml = build_yolo_dataset(tmp_path / "ds", prep.images["infrared"], prep.names)
    ds = tmp_path / "ds"
    imgs = sorted((ds / "images" / "train").iterdir())
    assert len(imgs) == 10 and all(p.resolve().parent == (train / "ir").resolve() for p in imgs)
    assert len(list((ds / "images" / "val").iterdir())) == 8  # a few train images, never the test ones
    assert sorted(p.name for p in (ds / "labels" / "test").iterdir()) == ["p00.txt", "p01.txt"]
    assert (ds / "labels" / "train" / "p01.txt").read_text() == "1 0.500000 0.350000 0.200000 0.300000\n"
    text = yaml.read_text()
    assert '\ntest: "images/test"' in text and '  1: "car"' in text and "nc: 2" in text
    assert json.loads(text.splitlines()[0].split(": ", 1)[1]) == str(ds.resolve())


# ------------------------------------------------------------------ tables


def _runs():
    return [
        {"input": "visible", "seed": 0, "map50": {"a": 0.2, "b": math.nan, "all": 0.2}, "map": {"a": 0.1, "all": 0.1}},
        {"input": "visible", "seed": 1, "map50": {"a": 0.4, "b": math.nan, "all": 0.4}, "map": {"a": 0.2, "all": 0.2}},
        {"input": "F", "seed": 0, "map50": {"a": 0.5, "b": 0.1, "all": 0.3}, "map": {"a": 0.3, "all": 0.2}},
        {"input": "F", "seed": 1, "map50": {"a": 0.7, "b": 0.3, "all": 0.5}, "map": {"a": 0.4, "all": 0.3}},
    ]


def test_aggregate_mean_and_sample_std():
    t = aggregate(_runs(), ["visible", "F"], ["a", "b", "all"])
    assert t["mean"]["map50"]["F"]["a"] == pytest.approx(0.6)
    assert t["std"]["map50"]["F"]["a"] == pytest.approx(math.sqrt(0.02))  # ddof 1
    assert math.isnan(t["mean"]["map50"]["visible"]["b"])
    assert t["seeds"]["F"] == [0, 1]


def test_tables_bold_best_and_files(tmp_path):
    t = aggregate(_runs(), ["visible", "F"], ["a", "b", "all"])
    md = table_markdown(t, ["one note"])
    assert "| F | 2 | **60.0 ± 14.1** | 20.0 ± 14.1 | **40.0 ± 14.1** |" in md  # one value: nothing to beat
    assert "| visible | 2 | 30.0 ± 14.1 | n/a | 30.0 ± 14.1 |" in md
    assert "Note: one note" in md
    tie = aggregate([dict(r, map50={"a": 0.0, "b": 0.0, "all": 0.0}) for r in _runs()], ["visible", "F"], ["a", "all"])
    assert "**" not in table_markdown(tie).split("### mAP@[.5:.95]")[0]  # all equal: no best
    tex = table_latex(t)
    assert r"\textbf{60.0 $\pm$ 14.1}" in tex and r"\toprule" in tex
    files = write_tables(t, _runs(), tmp_path, notes=["n"], extra={"cpu_s": 3.0})
    assert [p.name for p in files] == ["detect.md", "detect.csv", "detect.json", "detect.tex"]
    doc = json.loads((tmp_path / "detect.json").read_text())
    assert doc["cpu_s"] == 3.0 and doc["table"]["mean"]["map50"]["visible"]["b"] is None
    csv_rows = (tmp_path / "detect.csv").read_text().splitlines()
    assert "F,map50,a,0.6,0.141421,2,0.5 0.7" in csv_rows


# ------------------------------------------------------------------ command line


def test_cli_bad_box_is_one_line_naming_the_file(tmp_path, splits, capsys):
    train, test = splits
    (train / "labels" / "p02.txt").write_text("0 1.2 0.5 0.1 0.1\n")
    rc = main(["downstream", "detect", "--train", str(train), "--test", str(test), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "p02.txt" in err and "outside the 64x64 image" in err


def test_cli_help_works_without_the_extra(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["downstream", "detect", "--help"])
    assert ex.value.code == 0 and "--model-yaml" in capsys.readouterr().out


@pytest.mark.parametrize("text, seeds", [("3", [0, 1, 2]), ("2-3", [2, 3]), ("0,2", [0, 2]), ("4,", [4])])
def test_parse_seeds(text, seeds):
    from ivfuse.downstream.cli import parse_seeds

    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["0", "x", "3-1", "1,1", "-1,2", "1.5"])
def test_cli_bad_seeds_is_a_usage_error(text, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["downstream", "detect", "--train", "a", "--test", "b", "--seeds", text, "-o", "o"])
    assert ex.value.code == 2 and "--seeds" in capsys.readouterr().err


def test_cli_seed_range_reaches_the_runs(tmp_path, splits, monkeypatch):
    import ivfuse.downstream.detect as det

    seen = {}

    def fake(train, test, inputs, out, settings, seeds, **kw):
        seen["seeds"] = list(seeds)
        raise ValueError("stop here")

    monkeypatch.setattr(det, "run_detection", fake)
    train, test = splits
    rc = main(["downstream", "detect", "--train", str(train), "--test", str(test), "--seeds", "1-2",
               "-o", str(tmp_path / "o")])
    assert rc == 1 and seen["seeds"] == [1, 2]


# ------------------------------------------------------------------ end to end (needs the detect extra)


def test_end_to_end_tiny_run_offline(tmp_path, rng, monkeypatch):
    pytest.importorskip("ultralytics")
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "cfg"))
    train = _dataset(tmp_path / "train", 16, rng)
    test = _dataset(tmp_path / "test", 6, rng)
    out = tmp_path / "out"
    rc = main(["downstream", "detect", "--train", str(train), "--test", str(test), "--sources", "vis",
               "--fused", "avg=average", "--epochs", "1", "--imgsz", "64", "--batch", "8", "--seeds", "1",
               "--device", "cpu", "--threads", "1", "-q", "-o", str(out)])
    assert rc == 0
    assert attempts == []  # nothing tried to reach the network
    doc = json.loads((out / "detect.json").read_text())
    assert doc["images"] == {"train": 16, "test": 6}
    assert doc["table"]["inputs"] == ["visible", "avg"]
    assert doc["table"]["columns"] == ["person", "car", "all"]
    for r in doc["runs"]:
        for m in ("map50", "map"):
            assert 0.0 <= r[m]["all"] <= 1.0
        assert r["threads"] == 1 and r["cpu_s"] > 0
        assert Path(r["weights"]).is_file()
    assert len(list((out / "datasets" / "avg" / "labels" / "test").glob("*.txt"))) == 6
    assert len(list((out / "fused" / "avg" / "train").glob("*.png"))) == 16
    assert "| avg | 1 |" in (out / "detect.md").read_text()


def test_real_msrs_labels_check_clean(tmp_path):
    """The shared MSRS labels pass the checks: every image has a label file and all boxes are inside."""
    if not (SHARED / "data" / "train" / "msrs").is_dir():
        pytest.skip("../shared is not available")
    from ivfuse.downstream import scan_split

    split, names = scan_split(SHARED / "data" / "test" / "msrs")
    assert names == ["person", "bicycle", "car"]
    assert len(split.images) == 40 and not split.missing_labels
    assert split.class_counts(3) == [68, 15, 52]  # 135 boxes
