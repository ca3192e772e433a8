"""``ivfuse bench`` on a tiny synthetic dataset with peers in both published layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ivfuse._files import FUSED_MARKER
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
    assert table["n"] == {m: 3 for m in ("EN", "SD", "MI", "Qabf")}
    assert {name: c["EN"] for name, c in table["count"].items()} == {"average": 3, "max": 3, "Noise": 3}
    assert json.loads((out / "report.json").read_text())["problems"] == []
    speed = json.loads((out / "speed.json").read_text())
    assert [r["model"] for r in speed] == ["average", "max"] and all(r["latency_s"] > 0 for r in speed)
    grid = read_array(out / "grid_mini.png")
    assert grid.ndim == 3 and grid.shape[0] > 3 * 36  # three rows of thumbnails
    page = (out / "index.html").read_text()
    assert "grid_mini.png" in page and "<table>" in page
    assert "| average |" in (out / "report.md").read_text()
    assert len(list((out / "fused" / "mini" / "max").glob("*.png"))) == 3
    assert (out / "fused" / "mini" / "max" / FUSED_MARKER).is_file()  # marked as bench's own


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


def test_bench_goes_on_past_an_empty_grid_pair(tmp_path, rng, capsys):
    ds = tmp_path / "mini"
    _dataset(ds, rng, n=4, shape=(48, 48))
    (ds / "ir" / "p1.png").write_bytes(b"")  # an empty file among the grid's first three pairs
    peer = tmp_path / "peer"
    for k in range(4):
        write_image(peer / f"p{k}.png", rng.integers(0, 256, (48, 48)).astype(np.uint8))
    out = tmp_path / "report"
    code = main(["bench", "--data", str(ds), "--models", "average,max", "--peer", f"Other={peer}",
                 "--metrics", "EN,MI", "--no-speed", "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert "[fuse] mini/p1 average:" in err and "[grid] mini/p1 infrared:" in err and "file is empty" in err
    assert "[score] mini/p1 Other:" in err  # the peer's image cannot be scored against an empty source
    page = (out / "index.html").read_text()
    report = (out / "report.md").read_text()
    for text in (page, report):
        assert "Problems" in text and "Bad pairs (1): mini/p1" in text
    assert "| mini | p1 | fuse | average, max |" in report
    table = json.loads((out / "quality_mini.json").read_text())
    assert table["n"] == {"EN": 3, "MI": 3} and table["count"]["Other"]["EN"] == 3
    assert "p1" in table["left_out"]["EN"] and "Note: compared on the 3 images" in report
    grid = read_array(out / "grid_mini.png")
    assert grid.shape[0] > 3 * 48  # three rows, the bad pair's infrared as an "unreadable" cell
    summary = json.loads((out / "report.json").read_text())
    assert {(p["stage"], p["pair"]) for p in summary["problems"]} == {("fuse", "p1"), ("score", "p1"), ("grid", "p1")}


def test_bench_goes_on_past_a_failing_speed_measurement(tmp_path, rng, capsys, monkeypatch):
    from ivfuse import bench

    def speed_row(model, threads=2, checkpoint=None):
        if model == "max":
            raise RuntimeError("speed measurement of 'max' failed: boom")
        return {"model": model, "params": 0, "gflops": 0.0, "latency_s": 0.01, "peak_mb": 1.0,
                "peak_over_idle_mb": 0.5}

    monkeypatch.setattr(bench, "speed_row", speed_row)
    ds = tmp_path / "mini"
    _dataset(ds, rng, n=1)
    out = tmp_path / "report"
    assert main(["bench", "--data", str(ds), "--models", "average,max", "--metrics", "EN", "-o", str(out), "-q"]) == 1
    assert "[speed] max: speed measurement of 'max' failed: boom" in capsys.readouterr().err
    assert [r["model"] for r in json.loads((out / "speed.json").read_text())] == ["average"]
    assert "boom" in (out / "index.html").read_text()


def _tiny_checkpoint(path, seed=3):
    import torch

    from ivfuse.models import create_model
    from ivfuse.models.registry import save_weights

    model = create_model("tiny_cnn", pretrained=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return save_weights(model, path)


def test_bench_checkpoint_for_a_trained_model(tmp_path, rng):
    from ivfuse.api import fuse

    ds = tmp_path / "mini"
    _dataset(ds, rng, n=2, shape=(48, 48))
    ck = _tiny_checkpoint(tmp_path / "mine.safetensors")
    out = tmp_path / "report"
    assert main(["bench", "--data", str(ds), "--models", "tiny_cnn,average", "--checkpoint", f"tiny_cnn={ck}",
                 "--metrics", "EN", "--no-speed", "-o", str(out), "-q"]) == 0
    made = read_array(out / "fused" / "mini" / "tiny_cnn" / "p0.png")
    expected = fuse(str(ds / "ir" / "p0.png"), str(ds / "vi" / "p0.png"), "tiny_cnn", checkpoint_path=ck)
    assert np.array_equal(made, read_array(_save(tmp_path / "ref.png", expected)))  # fused with those weights
    assert json.loads((out / "quality_mini.json").read_text())["methods"] == ["tiny_cnn", "average"]
    assert json.loads((out / "report.json").read_text())["checkpoints"] == {"tiny_cnn": str(ck)}


def _save(path, arr):
    write_image(path, arr)
    return path


def test_a_rerun_into_the_same_report_scores_the_new_weights(tmp_path, rng, capsys):
    from ivfuse.api import fuse

    ds = tmp_path / "mini"
    _dataset(ds, rng, n=2, shape=(48, 48))
    out = tmp_path / "report"
    args = ["bench", "--data", str(ds), "--models", "tiny_cnn", "--metrics", "EN,SD", "--no-speed",
            "-o", str(out), "-q"]
    first, second = _tiny_checkpoint(tmp_path / "a.safetensors", 3), _tiny_checkpoint(tmp_path / "b.safetensors", 4)
    assert main(args + ["--checkpoint", f"tiny_cnn={first}"]) == 0
    table_a = (out / "quality_mini.csv").read_text()
    assert main(args + ["--checkpoint", f"tiny_cnn={second}"]) == 0
    made = read_array(out / "fused" / "mini" / "tiny_cnn" / "p1.png")
    expected = fuse(str(ds / "ir" / "p1.png"), str(ds / "vi" / "p1.png"), "tiny_cnn", checkpoint_path=second)
    assert np.array_equal(made, read_array(_save(tmp_path / "ref.png", expected)))  # not the first run's image
    assert (out / "quality_mini.csv").read_text() != table_a

    # A folder at a fused path that bench did not write is left alone, and the run stops first.
    foreign = out / "fused" / "mini" / "average"
    foreign.mkdir(parents=True)
    (foreign / "p0.png").write_bytes(b"mine")
    capsys.readouterr()
    assert main(["bench", "--data", str(ds), "--models", "tiny_cnn,average", "--checkpoint", f"tiny_cnn={first}",
                 "--metrics", "EN", "--no-speed", "-o", str(out), "-q"]) != 0
    err = capsys.readouterr().err
    assert str(foreign) in err and "did not write" in err
    assert (foreign / "p0.png").read_bytes() == b"mine"
    assert np.array_equal(read_array(out / "fused" / "mini" / "tiny_cnn" / "p1.png"), made)  # nothing re-fused


def test_bench_checkpoint_errors_before_any_work(tmp_path, rng, capsys):
    import torch

    from ivfuse.models import create_model
    from ivfuse.models.registry import save_weights

    ds = tmp_path / "mini"
    _dataset(ds, rng, n=1)
    good = _tiny_checkpoint(tmp_path / "mine.safetensors")
    wrong = save_weights(create_model("pomai_cpu", pretrained=False), tmp_path / "other.safetensors")
    pickle = tmp_path / "mine.pt"
    torch.save({}, pickle)
    out = tmp_path / "report"
    base = ["bench", "--data", str(ds), "--models", "tiny_cnn", "--metrics", "EN", "--no-speed", "-o", str(out), "-q"]
    cases = [
        ([], "model 'tiny_cnn' has no shipped weights; give --checkpoint tiny_cnn=FILE"),
        (["--checkpoint", f"average={good}"], f"checkpoint '{good}' is for 'average', which is not among the models"),
        (["--checkpoint", f"tiny_cnn={tmp_path / 'none.safetensors'}"],
         "none.safetensors' for 'tiny_cnn': file not found"),
        (["--checkpoint", f"tiny_cnn={pickle}"], f"checkpoint '{pickle}' for 'tiny_cnn': only .safetensors"),
        (["--checkpoint", f"tiny_cnn={wrong}"], f"checkpoint '{wrong}' does not load into 'tiny_cnn'"),
        (["--checkpoint", "tiny_cnn"], "--checkpoint expects NAME=FILE"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # nothing was done


@pytest.mark.parametrize(("extra", "message"), [
    (["--metrics", "EN,XYZ"], "unknown metric 'XYZ'"),
    (["--metrics", "EN,ROI-SSIM"], "ROI-SSIM is not scored by bench"),
    (["--convention", "matlab"], "unknown convention 'matlab'"),
    (["--data", "nowhere"], "'nowhere': dataset folder not found"),
    (["--peer", "X=nowhere"], "'nowhere': folder of peer 'X' not found"),
    (["--peers", "nowhere"], "'nowhere': peers folder not found"),
    (["-o", "AFILE/report"], "output folder is not writable"),
])
def test_bench_checks_options_before_any_work(tmp_path, rng, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    _dataset(tmp_path / "mini", rng, n=1)
    (tmp_path / "AFILE").write_text("x")
    argv = ["bench", "--data", "mini", "--models", "average", "--metrics", "EN", "--no-speed", "-o", "report", "-q"]
    assert main(argv + extra) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "report" / "fused").exists()


def test_speed_row_uses_the_checkpoint(tmp_path):
    from ivfuse.bench import speed_row
    from ivfuse.models import create_model
    from ivfuse.models.registry import save_weights

    ck = _tiny_checkpoint(tmp_path / "mine.safetensors")
    row = speed_row("tiny_cnn", 32, 32, threads=1, warmup=0, repeat=1, checkpoint=ck)
    assert row["model"] == "tiny_cnn" and row["params"] == 5251 and row["latency_s"] > 0
    wrong = save_weights(create_model("pomai_cpu", pretrained=False), tmp_path / "other.safetensors")
    with pytest.raises(RuntimeError, match="other.safetensors'"):
        speed_row("tiny_cnn", 32, 32, threads=1, warmup=0, repeat=1, checkpoint=wrong)
