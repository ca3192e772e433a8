"""ivfuse.analysis and ``ivfuse analyze``: the measures on hand-computed arrays, P, JS, K-Means, the CLI."""

from __future__ import annotations

import csv
import math
import sys

import numpy as np
import pytest

from ivfuse import analysis as an
from ivfuse.cli import main
from ivfuse.io import write_image


def test_gcr_by_hand():
    # g = [[1, sqrt2], [0, 0]]: horizontal changes (sqrt2 - 1, 0), vertical ones (1, sqrt2).
    x = np.zeros((3, 3))
    x[0, 1] = 1.0
    assert an.gradient_change_rate(x) == pytest.approx(math.sqrt(2) / 2, abs=1e-12)


def test_gcr_zero_on_flat_and_ramp_and_larger_for_texture(rng):
    assert an.gradient_change_rate(np.full((5, 6), 0.3)) == 0.0
    ramp = np.tile(np.arange(8) / 10.0, (6, 1))  # constant gradient: no change of it
    assert an.gradient_change_rate(ramp) == pytest.approx(0.0, abs=1e-12)
    sparse = np.zeros((32, 32))
    sparse[10:14, 10:14] = 1.0
    texture = rng.random((32, 32))
    assert an.gradient_change_rate(texture) > 5 * an.gradient_change_rate(sparse)


def test_laplacian_variance_by_hand():
    # interior pixels (1,1) and (1,2): L = -4 and 1, mean -1.5, variance 6.25
    x = np.zeros((3, 4))
    x[1, 1] = 1.0
    assert an.laplacian_variance(x) == pytest.approx(6.25)
    assert an.laplacian_variance(np.tile(np.arange(5.0), (4, 1))) == pytest.approx(0.0)


def test_entropy_and_l1_by_hand():
    half = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert an.entropy(half) == pytest.approx(1.0)
    four = np.array([[0.0, 1 / 3], [2 / 3, 1.0]])
    assert an.entropy(four) == pytest.approx(2.0)
    assert an.entropy(np.full((4, 4), 0.7)) == 0.0
    assert an.l1_norm(np.array([[0.0, 0.5], [1.0, 0.5]])) == pytest.approx(0.5)


def test_measures_reject_colour_and_tiny_images():
    with pytest.raises(ValueError, match="gray"):
        an.entropy(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="3x3"):
        an.gradient_change_rate(np.zeros((2, 5)))


def test_js_divergence_in_nats():
    p = an.histogram(np.array([[0.0, 0.2], [0.4, 0.4]]))
    assert an.js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    # no level in common: ln 2 nats (= 1 bit)
    assert an.js_divergence(np.array([0.5, 0.5, 0, 0]), np.array([0, 0, 0.3, 0.7])) == pytest.approx(math.log(2))
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4), JS = 3/4 ln(4/3)
    assert an.js_divergence(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(0.75 * math.log(4 / 3))
    # unnormalised counts are normalised; symmetric
    assert an.js_divergence(np.array([2.0, 2.0]), np.array([3.0, 1.0])) == pytest.approx(
        an.js_divergence(np.array([0.75, 0.25]), np.array([0.5, 0.5])))
    with pytest.raises(ValueError):
        an.js_divergence(np.zeros(3), np.ones(3))


def test_histogram_levels():
    h = an.histogram(np.array([[0.0, 1.0], [1.0, 0.5]]))
    assert h.shape == (256,) and h.sum() == pytest.approx(1.0)
    assert h[0] == 0.25 and h[255] == 0.5 and h[128] == 0.25  # 0.5 * 255 = 127.5 rounds to 128


def test_p_statistics_with_ties():
    assert an.p_statistics([1, 2, 3, 4], [0, 2, 5, 1]) == (0.5, 0.25)
    assert an.p_statistics([1.0], [1.0]) == (0.0, 0.0)
    with pytest.raises(ValueError):
        an.p_statistics([1, 2], [1])


def test_kmeans_recovers_separated_clusters(rng):
    centres = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 0.0]])
    truth = np.repeat(np.arange(3), 30)
    pts = centres[truth] + rng.normal(0, 0.5, (90, 2))
    order = rng.permutation(90)
    labels, found = an.kmeans(pts[order], 3, seed=7)
    # numbered by centre x: cluster j is truth j
    assert np.array_equal(labels, truth[order])
    assert np.allclose(found, centres, atol=0.3)
    again, _ = an.kmeans(pts[order], 3, seed=7)
    assert np.array_equal(again, labels)


def test_kmeans_1d_and_errors():
    labels, c = an.kmeans(np.array([0.1, 0.9, 0.12, 0.5, 0.88, 0.52]), 3)
    assert labels.tolist() == [0, 2, 0, 1, 2, 1]
    assert c[:, 0] == pytest.approx([0.11, 0.51, 0.89])
    with pytest.raises(ValueError, match="at least 4 points"):
        an.kmeans(np.zeros(3), 4)
    labels, _ = an.kmeans(np.zeros(5), 2)  # identical points: still k labels in range
    assert set(labels.tolist()) <= {0, 1}


def test_standardise():
    z = an.standardise(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert z.tolist() == [[-1.0, 0.0], [1.0, 0.0]]


def _dataset(root, n=6, size=24, seed=0):
    """Pairs with a sparse infrared (a warm square on dark) and a textured visible image."""
    r = np.random.default_rng(seed)
    for i in range(n):
        ir = np.full((size, size), 0.05)
        ir[4 + i:10 + i, 5:11] = 0.9
        vis = np.clip(0.4 + 0.3 * r.random((size, size)) + 0.05 * i, 0, 1)
        write_image(root / "ir" / f"p{i}.png", ir)
        write_image(root / "vi" / f"p{i}.png", np.stack([vis] * 3, -1))
    return root


def test_analyze_cli_end_to_end(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["analyze", str(ds), "-o", str(out), "--clusters", "2", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "analysed 6 pairs" in printed
    rows = list(csv.DictReader(open(out / "analysis_pairs.csv")))
    assert [r["image"] for r in rows] == [f"p{i}" for i in range(6)]
    from ivfuse.io import as_gray, read_image

    expect = an.pair_stats("p3", as_gray(read_image(ds / "ir" / "p3.png")), as_gray(read_image(ds / "vi" / "p3.png")))
    assert float(rows[3]["GCR_ir"]) == pytest.approx(expect.ir["GCR"], rel=1e-6)
    assert float(rows[3]["H_vis"]) == pytest.approx(expect.vis["H"], rel=1e-6)
    assert float(rows[3]["js"]) == pytest.approx(expect.js, rel=1e-6)
    assert {r["cluster"] for r in rows} == {"0", "1"}
    summary = (out / "analysis_summary.md").read_text()
    # the visible images are textured and brighter: visible exceeds infrared on every measure
    for m in ("GCR", "Lap", "H", "L1"):
        assert f"| {m} (" in summary
        assert "| 0.0% | 100.0% |" in summary.split(f"| {m} (")[1].split("\n")[0]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "ivfuse[plot]" in summary and not (out / "analysis_p.png").exists()
    else:
        for name in ("analysis_p.png", "analysis_clusters.png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_without_matplotlib(tmp_path, capsys, monkeypatch):
    ds = _dataset(tmp_path / "ds", n=3)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert main(["analyze", str(ds), "-o", str(tmp_path / "o"), "--clusters", "1", "-q"]) == 0
    assert "pip install 'ivfuse[plot]'" in capsys.readouterr().out
    assert not (tmp_path / "o" / "analysis_p.png").exists()
    assert (tmp_path / "o" / "analysis_pairs.csv").is_file()


def test_analyze_skips_unreadable_image(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds", n=4)
    (ds / "ir" / "p2.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    assert main(["analyze", str(ds), "-o", str(out), "--clusters", "2", "-q"]) == 1
    err = capsys.readouterr().err
    assert "1 pairs skipped" in err and "p2:" in err and "p2.png" in err
    rows = list(csv.DictReader(open(out / "analysis_pairs.csv")))
    assert [r["image"] for r in rows] == ["p0", "p1", "p3"]
    assert "- p2:" in (out / "analysis_summary.md").read_text()


def test_analyze_empty_folder_and_bad_options(tmp_path, capsys):
    (tmp_path / "ds" / "ir").mkdir(parents=True)
    (tmp_path / "ds" / "vi").mkdir()
    assert main(["analyze", str(tmp_path / "ds"), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no infrared/visible pairs" in err[0]
    ds = _dataset(tmp_path / "ds2", n=2)
    assert main(["analyze", str(ds), "-o", str(tmp_path / "o"), "-q"]) == 1  # K=3 > 2 pairs
    assert "--clusters 3 needs at least 3" in capsys.readouterr().err
    assert main(["analyze", str(ds), "-o", str(ds / "ir" / "out"), "-q"]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert main(["analyze", "-o", str(tmp_path / "o")]) == 2


def test_analyze_cluster_on_all(tmp_path):
    ds = _dataset(tmp_path / "ds", n=6)
    stats = an.analyze_pairs(__import__("ivfuse.io", fromlist=["find_pairs"]).find_pairs(ds).pairs, clusters=3,
                             cluster_on="all")
    means = [c["js_mean"] for c in stats.cluster_summary()]
    assert means == sorted(means) and sum(c["pairs"] for c in stats.cluster_summary()) == 6
    with pytest.raises(ValueError, match="'js' or 'all'"):
        an.analyze_pairs([], cluster_on="xyz")
