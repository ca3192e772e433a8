"""``ivfuse eval`` and the comparison tables."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ivfuse.cli import main
from ivfuse.evaluation import MethodScores, comparison_table, table_markdown
from ivfuse.io import write_image


def test_best_and_second_marked_by_direction():
    a, b, c = MethodScores("a"), MethodScores("b"), MethodScores("c")
    a.rows = [{"image": "1", "EN": 7.0, "RMSE": 0.3}]
    b.rows = [{"image": "1", "EN": 6.0, "RMSE": 0.1}]
    c.rows = [{"image": "1", "EN": 5.0, "RMSE": 0.2}]
    t = comparison_table([a, b, c], ["EN", "RMSE"])
    assert t["rank"]["a"] == {"EN": 1, "RMSE": None}
    assert t["rank"]["b"] == {"EN": 2, "RMSE": 1}  # lower RMSE is better
    assert t["rank"]["c"] == {"EN": None, "RMSE": 2}
    md = table_markdown(t)
    assert "| a | 1 | **7.000** | 0.3000 |" in md and "_6.000_" in md


def test_nan_means_are_never_best():
    a, b = MethodScores("a"), MethodScores("b")
    a.rows = [{"image": "1", "EN": float("nan")}]
    b.rows = [{"image": "1", "EN": 3.0}]
    t = comparison_table([a, b], ["EN"])
    assert t["rank"]["a"]["EN"] is None and t["rank"]["b"]["EN"] == 1


def test_eval_command_compares_methods_and_reports_problems(tmp_path, rng, capsys):
    ds = tmp_path / "ds"
    good, noisy = tmp_path / "good", tmp_path / "noisy"
    for k in range(3):
        yy, xx = np.mgrid[0:40, 0:48]
        vis = (np.sin(xx / 3.0 + k) * 60 + 120).astype(np.uint8)
        ir = np.zeros((40, 48), np.uint8)
        ir[10:25, 15:30] = 230
        write_image(ds / "ir" / f"{k}.png", ir)
        write_image(ds / "vi" / f"{k}.png", vis)
        write_image(good / f"{k}.png", np.maximum(ir, vis))
        if k < 2:
            noise = rng.integers(0, 256, (40, 48)).astype(np.uint8)
            write_image(noisy / f"{k}.jpg", noise if k == 0 else noise[:30])  # k=1 mis-sized, k=2 missing
    code = main(["eval", str(ds), "--fused", f"good={good}", "--fused", f"noisy={noisy}", "--metrics", "EN,MI,Qabf,SSIM",
                 "-o", str(tmp_path / "rep"), "-q"])
    out = capsys.readouterr()
    assert code == 0
    assert "noisy/1: size mismatch" in out.err and "noisy/2: fused image missing" in out.err
    rows = list(csv.DictReader(open(tmp_path / "rep" / "per_image_good.csv")))
    assert [r["image"] for r in rows] == ["0", "1", "2"]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["count"] == {"good": 3, "noisy": 1}
    # Max-fusion of the sources beats noise on structure transfer and mutual information.
    assert summary["rank"]["good"]["Qabf"] == 1 and summary["rank"]["good"]["MI"] == 1
    assert (tmp_path / "rep" / "summary.md").read_text().count("|") > 10


def test_eval_needs_sources(tmp_path, capsys):
    assert main(["eval", "--fused", str(tmp_path)]) == 2


def test_eval_bad_metric(tmp_path, capsys):
    (tmp_path / "ir").mkdir()
    (tmp_path / "vi").mkdir()
    assert main(["eval", str(tmp_path), "--fused", str(tmp_path), "--metrics", "XYZ"]) == 1
    assert "unknown metric" in capsys.readouterr().err
