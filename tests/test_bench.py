"""``ivfuse bench`` on a tiny synthetic dataset with peers in both published layouts."""

from __future__ import annotations

import json

import numpy as np

from ivfuse.bench import dataset_label, discover_peers
from ivfuse.cli import main
from ivfuse.io import read_array, write_image


def _dataset(root, rng, n=3, shape=(36, 44)):
    for k in range(n):
        write_image(root / "ir" / f"p{k}.png", rng.integers(0, 256, shape).astype(np.uint8))
        write_image(root / "vi" / f"p{k}.png", rng.integers(0, 256, shape + (3,)).astype(np.uint8))


def test_discover_peers_layouts(tmp_path, rng):
    flat = tmp_path / "flat"
    for img in ("carLight", "car"):
        for m in ("ADF", "GTF_x"):
            write_image(flat / f"{img}_{m}.jpg", np.zeros((4, 4), np.uint8))
    peers = discover_peers(flat, ["car", "carLight"])
    assert [(p.name, p.template) for p in peers] == [("ADF", "{name}_ADF"), ("GTF_x", "{name}_GTF_x")]
    nested = tmp_path / "nested"
    write_image(nested / "DenseFuse" / "01.png", np.zeros((4, 4), np.uint8))
    assert [p.name for p in discover_peers(nested, ["01"])] == ["DenseFuse"]
    assert dataset_label(tmp_path / "vifb" / "input") == "vifb"


def test_bench_writes_full_report(tmp_path, rng):
    ds = tmp_path / "mini"
    _dataset(ds, rng)
    peers = tmp_path / "peers"
    for k in range(3):
        write_image(peers / f"p{k}_Noise.png", rng.integers(0, 256, (36, 44)).astype(np.uint8))
    out = tmp_path / "report"
    code = main(["bench", "--data", str(ds), "--models", "average,max", "--peers", str(peers),
                 "--metrics", "EN,SD,MI,Qabf", "-o", str(out), "-q"])
    assert code == 0
    table = json.loads((out / "quality_mini.json").read_text())
    assert table["methods"] == ["average", "max", "Noise"]
    assert table["count"] == {"average": 3, "max": 3, "Noise": 3}
    speed = json.loads((out / "speed.json").read_text())
    assert [r["model"] for r in speed] == ["average", "max"] and all(r["latency_s"] > 0 for r in speed)
    grid = read_array(out / "grid_mini.png")
    assert grid.ndim == 3 and grid.shape[0] > 3 * 36  # three rows of thumbnails
    page = (out / "index.html").read_text()
    assert "grid_mini.png" in page and "<table>" in page
    assert "| average |" in (out / "report.md").read_text()
    assert len(list((out / "fused" / "mini" / "max").iterdir())) == 3


def test_discovered_peers_only_score_datasets_they_cover(tmp_path, rng):
    big, small = tmp_path / "big", tmp_path / "small"
    _dataset(big, rng, n=3)
    _dataset(small, rng, n=1)
    peers = tmp_path / "peers" / "Other"
    write_image(peers / "p0.png", rng.integers(0, 256, (36, 44)).astype(np.uint8))
    out = tmp_path / "rep"
    assert main(["bench", "--data", str(big), "--data", str(small), "--models", "average", "--peers",
                 str(tmp_path / "peers"), "--metrics", "EN", "--no-speed", "-o", str(out), "-q"]) == 0
    assert json.loads((out / "quality_big.json").read_text())["methods"] == ["average"]
    assert json.loads((out / "quality_small.json").read_text())["methods"] == ["average", "Other"]
