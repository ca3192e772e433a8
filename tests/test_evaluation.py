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
        xx = np.mgrid[0:40, 0:48][1]
        vis = (np.sin(xx / 3.0 + k) * 60 + 120).astype(np.uint8)
        ir = np.zeros((40, 48), np.uint8)
        ir[10:25, 15:30] = 230
        write_image(ds / "ir" / f"{k}.png", ir)
        write_image(ds / "vi" / f"{k}.png", vis)
        write_image(good / f"{k}.png", np.maximum(ir, vis))
        if k < 2:
            noise = rng.integers(0, 256, (40, 48)).astype(np.uint8)
            write_image(noisy / f"{k}.jpg", noise if k == 0 else noise[:30])  # k=1 mis-sized, k=2 missing
    code = main(["eval", str(ds), "--fused", f"good={good}", "--fused", f"noisy={noisy}",
                 "--metrics", "EN,MI,Qabf,SSIM", "-o", str(tmp_path / "rep"), "-q"])
    out = capsys.readouterr()
    assert code == 1  # two fused images could not be scored
    assert "2 fused images could not be scored" in out.err
    assert "noisy/1: size mismatch" in out.err and "noisy/2: fused image missing" in out.err
    rows = _rows(tmp_path / "rep" / "per_image_good.csv")
    assert [r["image"] for r in rows] == ["0", "1", "2"]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    # Compared on the one image both have; each method's own count is kept beside.
    assert summary["n"] == {m: 1 for m in ("EN", "MI", "Qabf", "SSIM")}
    assert summary["count"]["good"]["EN"] == 1 and summary["count_all"]["good"]["EN"] == 3
    assert summary["mean"]["good"]["EN"] == pytest.approx(float(rows[0]["EN"]), rel=1e-5)
    # Max-fusion of the sources beats noise on structure transfer and mutual information.
    assert summary["rank"]["good"]["Qabf"] == 1 and summary["rank"]["good"]["MI"] == 1
    assert (tmp_path / "rep" / "summary.md").read_text().count("|") > 10
    assert (tmp_path / "rep" / "summary.tex").read_text().count(r"\\") == 3  # header and the two methods


def test_eval_needs_sources(tmp_path, capsys):
    assert main(["eval", "--fused", str(tmp_path)]) == 2


def test_eval_bad_metric(tmp_path, capsys):
    (tmp_path / "ir").mkdir()
    (tmp_path / "vi").mkdir()
    assert main(["eval", str(tmp_path), "--fused", str(tmp_path), "--metrics", "XYZ"]) == 1
    assert "unknown metric" in capsys.readouterr().err


def _roi_dataset(tmp_path):
    """Three 40x48 pairs with a fused folder; the fused image spoils the left half of the scene."""
    ds, fused = tmp_path / "ds", tmp_path / "fused"
    xx = np.mgrid[0:40, 0:48][1]
    for k in range(3):
        vis = (np.sin(xx / 3.0 + k) * 60 + 120).astype(np.uint8)
        ir = np.zeros((40, 48), np.uint8)
        ir[10:30, 24:44] = 230
        f = np.maximum(ir, vis)
        f[:, :24] = 255 - f[:, :24]
        write_image(ds / "ir" / f"{k}.png", ir)
        write_image(ds / "vi" / f"{k}.png", vis)
        write_image(fused / f"{k}.png", f)
    return ds, fused


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _roi_ssim_column(path):
    return [float(r["ROI-SSIM"]) for r in _rows(path)]


def test_eval_roi_from_yolo_boxes_and_masks(tmp_path, capsys):
    from ivfuse.metrics import evaluate

    ds, fused = _roi_dataset(tmp_path)
    boxes_dir, masks_dir = tmp_path / "labels", tmp_path / "masks"
    boxes_dir.mkdir()
    # YOLO: class cx cy w h, normalised; the right half (x 24..48), rows 8..32. Pair 2 has no file.
    for k in (0, 1):
        (boxes_dir / f"{k}.txt").write_text("0 0.75 0.5 0.5 0.6\n")
        mask = np.zeros((40, 48), np.uint8)
        mask[:, :24] = 255  # the spoiled half
        write_image(masks_dir / f"{k}.png", mask)
    assert main(["eval", str(ds), "--fused", str(fused), "--metrics", "EN", "--roi", str(boxes_dir),
                 "-o", str(tmp_path / "rb"), "-q"]) == 1  # pair 2's ROI-SSIM could not be scored
    assert "fused/2 ROI-SSIM: no boxes for this pair" in capsys.readouterr().err
    by_boxes = _roi_ssim_column(tmp_path / "rb" / "per_image_fused.csv")
    expected = evaluate(str(fused / "0.png"), str(ds / "ir" / "0.png"), str(ds / "vi" / "0.png"),
                        metrics=["ROI-SSIM"], roi=[(24, 8, 48, 32)])["ROI-SSIM"]
    assert by_boxes[0] == pytest.approx(expected, rel=1e-5)  # the CSV keeps 6 digits
    assert np.isnan(by_boxes[2])  # no annotation: no ROI, left out of the mean
    summary = json.loads((tmp_path / "rb" / "summary.json").read_text())
    assert summary["mean"]["fused"]["ROI-SSIM"] == pytest.approx(np.mean(by_boxes[:2]), rel=1e-5)

    assert main(["eval", str(ds), "--fused", str(fused), "--metrics", "EN", "--roi", str(masks_dir),
                 "-o", str(tmp_path / "rm"), "-q"]) == 1
    assert "fused/2 ROI-SSIM: no mask for this pair" in capsys.readouterr().err
    by_masks = _roi_ssim_column(tmp_path / "rm" / "per_image_fused.csv")
    # The spoiled half scores lower than the intact one.
    assert by_masks[0] < by_boxes[0] - 0.1


def test_eval_roi_pseudo_and_errors(tmp_path, capsys):
    ds, fused = _roi_dataset(tmp_path)
    assert main(["eval", str(ds), "--fused", str(fused), "--metrics", "EN", "--roi", "pseudo",
                 "-o", str(tmp_path / "rp"), "-q"]) == 0
    # The warm square (x 24..44) lies in the intact half: every pair has a pseudo-ROI there.
    assert all(np.isfinite(_roi_ssim_column(tmp_path / "rp" / "per_image_fused.csv")))
    capsys.readouterr()
    assert main(["eval", str(ds), "--fused", str(fused), "--metrics", "EN,ROI-SSIM", "-q"]) == 2
    assert "--roi" in capsys.readouterr().err
    assert main(["eval", str(ds), "--fused", str(fused), "--roi", str(tmp_path / "nowhere"), "-q"]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_latex_table_marks_best_and_second_and_escapes_names():
    from ivfuse.evaluation import table_latex

    a, b, c = MethodScores("ours_v2 & co"), MethodScores("b"), MethodScores("c%")
    a.rows = [{"image": "1", "EN": 7.0, "RMSE": 0.3}]
    b.rows = [{"image": "1", "EN": 6.0, "RMSE": 0.1}]
    c.rows = [{"image": "1", "EN": float("nan"), "RMSE": 0.2}]
    tex = table_latex(comparison_table([a, b, c], ["EN", "RMSE"]), caption="TNO_25", label="tab:x")
    rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert rows[0] == r"Method & EN $\uparrow$ & RMSE $\downarrow$ \\"
    assert rows[1] == r"ours\_v2 \& co & \textbf{7.000} & 0.3000 \\"
    assert rows[2] == r"b & \underline{6.000} & \textbf{0.1000} \\"
    assert rows[3] == r"c\% & -- & \underline{0.2000} \\"  # no mean: '--', never marked
    assert r"\caption{TNO\_25}" in tex and r"\label{tab:x}" in tex
    assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")


def test_score_methods_matches_one_method_at_a_time(tmp_path):
    from ivfuse.evaluation import find_fused, score_method, score_methods
    from ivfuse.io import find_pairs

    ds, fused = _roi_dataset(tmp_path)
    other = tmp_path / "other"
    for k in (0, 2):  # pair 1 missing for this method
        img = np.asarray(np.random.default_rng(k).integers(0, 256, (40, 48)), dtype=np.uint8)
        write_image(other / f"{k}.png", img)
    (ds / "ir" / "2.png").write_bytes(b"not a png")  # pair 2's infrared is unreadable
    pairs = find_pairs(ds).pairs
    maps = {name: find_fused(folder, [p.name for p in pairs]) for name, folder in (("a", fused), ("b", other))}
    together = score_methods(maps, pairs, ["EN", "MI", "VIF", "Qabf", "SSIM", "Qcb"], "vifb", progress=False)
    alone = [score_method(n, pairs, m, ["EN", "MI", "VIF", "Qabf", "SSIM", "Qcb"], "vifb", progress=False)
             for n, m in maps.items()]
    for t, a in zip(together, alone):
        assert t.name == a.name and t.rows == a.rows and t.problems == a.problems  # the same numbers, bit for bit
    a, b = together
    assert [r["image"] for r in a.rows] == ["0", "1"] and [r["image"] for r in b.rows] == ["0"]
    assert [n for n, _ in b.problems] == ["1", "2"] and b.problems[0][1] == "fused image missing"
    assert "2.png" in a.problems[0][1] and a.problems[0][0] == "2"  # the bad source is named, for every method


def test_eval_several_conventions_one_table_each(tmp_path, capsys):
    from ivfuse.metrics import evaluate, list_metrics

    ds, fused = _roi_dataset(tmp_path)
    out = tmp_path / "rep"
    assert main(["eval", str(ds), "--fused", f"f={fused}", "--convention", "vifb,cddfuse,vifb", "-o", str(out),
                 "-q"]) == 0
    assert not (out / "summary.json").exists()
    for conv in ("vifb", "cddfuse"):
        table = json.loads((out / f"summary_{conv}.json").read_text())
        assert table["metrics"] == list_metrics(conv)
        rows = _rows(out / f"per_image_f_{conv}.csv")
        ref = evaluate(str(fused / "0.png"), str(ds / "ir" / "0.png"), str(ds / "vi" / "0.png"), convention=conv)
        assert float(rows[0]["SSIM"]) == pytest.approx(ref["SSIM"], rel=1e-5)
    assert capsys.readouterr().out.count("### ") == 2  # the repeated convention is scored once
    assert main(["eval", str(ds), "--fused", str(fused), "--convention", "vifb,matlab", "-q"]) == 1
    assert "unknown convention 'matlab'" in capsys.readouterr().err


def _pairs48(root, n=4, flat_ir=()):
    """n 48x48 pairs named 0..n-1 with a warm square in the infrared (flat, no warm region, for ``flat_ir``)."""
    xx = np.mgrid[0:48, 0:48][1]
    for k in range(n):
        vis = (np.sin(xx / 3.0 + k) * 60 + 120).astype(np.uint8)
        ir = np.full((48, 48), 90, np.uint8)
        if k not in flat_ir:
            ir[12:36, 12:36] = 230
        write_image(root / "ir" / f"{k}.png", ir)
        write_image(root / "vi" / f"{k}.png", vis)
    return root


def _fuse_max(ds, out, names):
    from ivfuse.io import read_array

    for k in names:
        write_image(out / f"{k}.png",
                    np.maximum(read_array(ds / "ir" / f"{k}.png"), read_array(ds / "vi" / f"{k}.png")))
    return out


def test_eval_fails_when_nothing_could_be_scored(tmp_path, capsys):
    ds = _pairs48(tmp_path / "ds")
    bad = tmp_path / "bad"
    bad.mkdir()
    for k in range(4):
        (bad / f"{k}.png").write_bytes(b"")  # four empty files
    code = main(["eval", str(ds), "--fused", f"bad={bad}", "--metrics", "EN,SSIM", "-o", str(tmp_path / "rep"), "-q"])
    out = capsys.readouterr()
    assert code == 1
    assert "4 fused images could not be scored" in out.err
    assert all(f"bad/{k}: " in out.err for k in range(4)) and "empty" in out.err
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["count"]["bad"] == {"EN": 0, "SSIM": 0} and summary["mean"]["bad"]["EN"] is None
    assert "| bad | 0 | n/a | n/a |" in out.out
    assert "bad: no image could be scored for any metric" in out.out


def test_eval_compares_methods_on_the_images_all_of_them_have(tmp_path, capsys):
    ds = _pairs48(tmp_path / "ds")
    full = _fuse_max(ds, tmp_path / "full", range(4))
    few = _fuse_max(ds, tmp_path / "few", [0])  # missing 3 of 4
    out_dir = tmp_path / "rep"
    code = main(["eval", str(ds), "--fused", f"full={full}", "--fused", f"few={few}", "--metrics", "EN,SD",
                 "-o", str(out_dir), "-q"])
    out = capsys.readouterr()
    assert code == 1
    assert "3 fused images could not be scored" in out.err
    assert [line.strip() for line in out.err.splitlines()[1:]] == [f"few/{k}: fused image missing" for k in (1, 2, 3)]
    table = json.loads((out_dir / "summary.json").read_text())
    first = _rows(out_dir / "per_image_full.csv")
    assert len(first) == 4  # every image of 'full' is scored and kept in its per-image CSV
    # Both means are over image 0 only (the same image, so equal), not 'full' over four images.
    assert table["n"] == {"EN": 1, "SD": 1} and table["count"]["full"] == {"EN": 1, "SD": 1}
    assert table["mean"]["full"]["EN"] == pytest.approx(float(first[0]["EN"]), rel=1e-5)
    assert table["mean"]["full"]["EN"] == pytest.approx(table["mean"]["few"]["EN"])
    assert table["mean_all"]["full"]["EN"] == pytest.approx(np.mean([float(r["EN"]) for r in first]), rel=1e-5)
    assert table["left_out"]["EN"] == {str(k): "few: fused image missing" for k in (1, 2, 3)}
    md = (out_dir / "summary.md").read_text()
    assert "Note: compared on the 1 image every method has; left out 3: 1 (few: fused image missing)" in md
    assert "| full | 1 |" in md and "| few | 1 |" in md


def test_a_method_scored_on_fewer_images_is_not_marked_best_on_them():
    # 'sparse' beats 'dense' on its one image only because 'dense' was averaged over harder images too.
    dense, sparse = MethodScores("dense"), MethodScores("sparse")
    dense.rows = [{"image": "0", "EN": 7.0}, {"image": "1", "EN": 1.0}, {"image": "2", "EN": 1.0}]
    sparse.rows = [{"image": "0", "EN": 5.0}]
    sparse.problems = [("1", "fused image missing"), ("2", "unreadable")]
    t = comparison_table([dense, sparse], ["EN"], images=["0", "1", "2", "3"])
    assert t["mean"]["dense"]["EN"] == 7.0 and t["mean_all"]["dense"]["EN"] == 3.0
    assert t["rank"]["dense"]["EN"] == 1 and t["rank"]["sparse"]["EN"] == 2
    assert t["n"]["EN"] == 1
    assert t["left_out"]["EN"] == {"1": "sparse: fused image missing", "2": "sparse: unreadable",
                                   "3": "every method: not scored"}
    md = table_markdown(t)
    assert "| dense | 1 | **7.000** |" in md and "| sparse | 1 | _5.000_ |" in md


def test_eval_pseudo_roi_nan_is_counted_and_reported(tmp_path, capsys):
    ds = _pairs48(tmp_path / "ds", flat_ir=(1, 3))  # flat infrared: no pseudo-ROI, ROI-SSIM is NaN
    fused = _fuse_max(ds, tmp_path / "fused", range(4))
    out_dir = tmp_path / "rep"
    code = main(["eval", str(ds), "--fused", str(fused), "--metrics", "EN", "--roi", "pseudo", "-o", str(out_dir),
                 "-q"])
    out = capsys.readouterr()
    assert code == 1
    assert "2 metric values could not be scored" in out.err
    for k in (1, 3):
        assert f"fused/{k} ROI-SSIM: empty pseudo-ROI" in out.err
    table = json.loads((out_dir / "summary.json").read_text())
    assert table["n"] == {"EN": 4, "ROI-SSIM": 2}
    assert table["count"]["fused"] == {"EN": 4, "ROI-SSIM": 2}
    md = (out_dir / "summary.md").read_text()
    assert "| method | n | EN ↑ | ROI-SSIM ↑ (n=2) |" in md and "| fused | 4 |" in md
    assert "Note: ROI-SSIM: compared on the 2 images every method has; left out 2: 1 (fused: empty pseudo-ROI" in md
    row = _rows(out_dir / "summary.csv")[0]
    assert row["n"] == "4" and row["n ROI-SSIM"] == "2"
    assert "($n=2$)" in (out_dir / "summary.tex").read_text()


def test_eval_checks_options_before_scoring(tmp_path, capsys):
    ds = _pairs48(tmp_path / "ds", n=1)
    fused = _fuse_max(ds, tmp_path / "fused", [0])
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(["eval", str(ds), "--fused", str(fused), "-o", str(blocker / "rep"), "-q"]) == 1
    out = capsys.readouterr()
    assert "output folder is not writable" in out.err and "###" not in out.out  # nothing was scored
    assert main(["eval", str(ds), "--fused", str(fused), "--fused", str(tmp_path / "nope"), "-q"]) == 1
    assert "nope': fused image folder not found" in capsys.readouterr().err
    assert main(["eval", str(ds), "--fused", str(fused), "--template", "{nme}_x", "-q"]) == 1
    assert "bad fused file template" in capsys.readouterr().err
    assert main(["eval", str(ds), "--fused", f"a={fused}", "--fused", f"a={ds}", "-q"]) == 1
    assert "named 'a'" in capsys.readouterr().err


def test_compare_methods_checks_metrics_and_output_first(tmp_path):
    from ivfuse.evaluation import compare_methods, find_fused
    from ivfuse.io import find_pairs

    ds = _pairs48(tmp_path / "ds", n=1)
    pairs = find_pairs(ds).pairs
    fused = {"f": find_fused(_fuse_max(ds, tmp_path / "fused", [0]), ["0"])}
    with pytest.raises(ValueError, match="unknown metric 'XYZ'"):
        compare_methods(fused, pairs, ["vifb"], ["EN", "XYZ"], progress=False)
    with pytest.raises(ValueError, match="ROI-SSIM needs regions"):
        compare_methods(fused, pairs, ["vifb"], ["ROI-SSIM"], progress=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PermissionError, match="not writable"):
        compare_methods(fused, pairs, ["vifb"], ["EN"], out_dir=tmp_path / "afile", progress=False)
    [result] = compare_methods(fused, pairs, ["vifb"], ["EN"], progress=False)
    assert result.complete and result.unscored == []


def test_mean_rank_column_over_the_eight_metrics(tmp_path):
    from ivfuse.evaluation import RANK_METRICS, MethodScores, comparison_table, mean_ranks, table_markdown, write_table

    a, b, c = MethodScores("a"), MethodScores("b"), MethodScores("c")
    # a best everywhere; b and c tie on all but SSIM, where c is worse (SSIM is higher-is-better).
    a.rows = [{"image": "1", **{m: 3.0 for m in RANK_METRICS}}]
    b.rows = [{"image": "1", **{m: 2.0 for m in RANK_METRICS}}]
    c.rows = [{"image": "1", **{m: 2.0 for m in RANK_METRICS}, "SSIM": 1.0}]
    table = comparison_table([a, b, c], list(RANK_METRICS))
    assert table["mean_rank"] == {"a": 1.0, "b": (7 * 2.5 + 2) / 8, "c": (7 * 2.5 + 3) / 8}
    md = table_markdown(table)
    assert "mean rank ↓" in md and "| a | 1 | " in md and md.splitlines()[2].endswith("| 1.00 |")
    csv_text = (write_table(table, tmp_path)[1]).read_text()
    assert csv_text.splitlines()[0].endswith("mean rank") and csv_text.splitlines()[3].endswith(",2.562")
    # Fewer than the eight metrics: no quality figure in the table.
    assert "mean rank" not in table_markdown(comparison_table([a, b], ["EN", "SD"]))
    unranked = mean_ranks({"x": {"EN": float("nan")}, "y": {"EN": 1.0}}, {"EN": True})
    assert unranked["y"] == 1.0 and unranked["x"] != unranked["x"]  # NaN: nothing to rank x on
