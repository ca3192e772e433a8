"""evaluate(), FusionEvaluator, the metric table, input handling and errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image

import ivfuse.metrics as M
from ivfuse.metrics import METRICS, FusionEvaluator, evaluate, list_metrics

CONVENTIONS = ["vifb", "cddfuse", "tang"]
ALL = [m for m in list_metrics() if m != "ROI-SSIM"]


# --- the metric table -----------------------------------------------------------------------


def test_table_order_and_directions():
    assert list_metrics()[:8] == ["EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM"]
    assert set(list_metrics()) == set(METRICS)
    lower = {n for n, info in METRICS.items() if not info.higher_is_better}
    assert lower == {"CE", "RMSE", "MSE", "Qcv", "Nabf"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["EN"].higher_is_better = False


def test_convention_tables():
    assert set(list_metrics("vifb")) == {
        "CE",
        "EN",
        "MI",
        "PSNR",
        "AG",
        "EI",
        "Qabf",
        "SD",
        "SF",
        "RMSE",
        "SSIM",
        "Qcb",
        "Qcv",
    }
    assert set(list_metrics("cddfuse")) == {
        "EN",
        "SD",
        "SF",
        "AG",
        "MI",
        "SCD",
        "VIF",
        "Qabf",
        "SSIM",
        "MSE",
        "CC",
        "PSNR",
    }
    assert "Nabf" in list_metrics("tang") and "Nabf" not in list_metrics("vifb")
    for conv in CONVENTIONS:
        names = list_metrics(conv)
        assert names == [n for n in list_metrics() if n in names]  # same stable order
        assert all(conv in METRICS[n].conventions for n in names)
    for name, info in METRICS.items():
        assert callable(getattr(M, info.function)), name


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_default_metrics_are_the_convention_table(triple, convention):
    fused, ir, vis = triple
    assert list(evaluate(fused, ir, vis, convention=convention)) == list_metrics(convention)
    with_roi = evaluate(fused, ir, vis, convention=convention, roi=[(0, 0, 64, 48)])
    assert list(with_roi) == list_metrics(convention) + ["ROI-SSIM"]


def test_default_convention_is_vifb(triple):
    assert M.DEFAULT_CONVENTION == "vifb"
    fused, ir, vis = triple
    assert evaluate(fused, ir, vis) == evaluate(fused, ir, vis, convention="vifb")


def test_names_are_case_insensitive_and_keep_the_requested_order(triple):
    fused, ir, vis = triple
    out = evaluate(fused, ir, vis, metrics=["qabf", "en", "Mi", "VIFp", "EN"])
    assert list(out) == ["Qabf", "EN", "MI", "VIF"]
    assert evaluate(fused, ir, vis, metrics="ssim").keys() == {"SSIM"}


# --- conventions change exactly the documented metrics ----------------------------------------

# On gray integer images the three conventions see the same pixels, so only the metric
# definitions differ. Pairs of conventions and the metrics whose definition differs between them.
# VIFB's min-max normalisation before MI only relabels the levels of an 8-bit image, which leaves
# MI unchanged, so MI differs between vifb and cddfuse only on non-integer images.
DIFFERS = {
    ("vifb", "cddfuse"): {"SF", "AG", "SSIM", "PSNR", "RMSE", "Qabf", "ROI-SSIM"},
    ("vifb", "tang"): {"SF", "MI", "SSIM", "PSNR", "MSE", "RMSE", "Qabf", "ROI-SSIM"},
    ("cddfuse", "tang"): {"AG", "MI", "SSIM", "PSNR", "MSE", "RMSE", "Qabf", "ROI-SSIM"},
}


def test_convention_switch_changes_exactly_the_listed_metrics(triple, rng):
    fused, ir, vis = (x.astype(np.int64) for x in triple)
    # A shared low-contrast patch makes edge strengths tie (gA == gF) at small values: where
    # Qabf's conventions differ (the range each feeds in; tang's 0..1 responses also round).
    patch = 100 + rng.integers(0, 2, size=(10, 15))
    fused[30:40, 5:20] = patch
    vis[30:40, 5:20] = patch
    fused, ir, vis = (x.astype(np.uint8) for x in (fused, ir, vis))
    roi = [(8, 8, 40, 30)]
    scores = {c: evaluate(fused, ir, vis, metrics=ALL + ["ROI-SSIM"], convention=c, roi=roi) for c in CONVENTIONS}
    for (c1, c2), expected in DIFFERS.items():
        changed = {m for m in scores[c1] if not math.isclose(scores[c1][m], scores[c2][m], rel_tol=1e-13)}
        assert changed == expected, (c1, c2)


def test_gray_conversion_per_convention(colour_triple):
    fused, ir, vis = colour_triple
    f = fused.astype(np.float64)
    matlab = np.floor(
        f[..., 0] * 0.298936021293775 + f[..., 1] * 0.587043074451121 + f[..., 2] * 0.114020904255103 + 0.5
    )
    cv2 = np.round(f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114)
    assert M.evaluate(fused, ir, vis, metrics=["SD"], convention="tang")["SD"] == pytest.approx(matlab.std(), rel=1e-12)
    # float32 arithmetic may move a few .5 cases; the SD barely notices.
    assert M.evaluate(fused, ir, vis, metrics=["SD"], convention="cddfuse")["SD"] == pytest.approx(cv2.std(), rel=1e-4)


def test_vifb_scores_a_colour_image_per_channel(colour_triple):
    fused, ir, vis = colour_triple
    names = [m for m in ALL if m != "SF"]
    whole = evaluate(fused, ir, vis, metrics=names + ["SF"])
    per_channel = [evaluate(fused[..., k], ir, vis[..., k], metrics=names) for k in range(3)]
    for name in names:
        assert whole[name] == pytest.approx(np.mean([p[name] for p in per_channel]), rel=1e-12), name
    side_by_side = np.concatenate([fused[..., k] for k in range(3)], axis=1).astype(np.float64)
    assert whole["SF"] == pytest.approx(M.spatial_frequency(side_by_side, convention="vifb"), rel=1e-12)


def test_vifb_scores_equal_channels_once(colour_triple, monkeypatch):
    fused, ir, vis = colour_triple
    gray_rgb = [np.repeat(x[..., 1:2], 3, axis=2) for x in (fused, vis)]
    calls = []
    vif = METRICS["VIF"].scorer

    def counting(p, **kw):
        calls.append(1)
        return vif(p, **kw)

    monkeypatch.setitem(METRICS, "VIF", dataclasses.replace(METRICS["VIF"], scorer=counting))
    names = [m for m in ALL if m != "SF"]
    # A gray image stored as RGB (three equal channels, as TNO ships): one triple is scored...
    as_rgb = evaluate(gray_rgb[0], ir, gray_rgb[1], metrics=names)
    assert len(calls) == 1
    # ... and every value is the per-channel mean, i.e. the value of that one plane.
    plane = evaluate(fused[..., 1], ir, vis[..., 1], metrics=names)
    for name in names:
        assert as_rgb[name] == pytest.approx(plane[name], rel=1e-12), name
    # Distinct channels are each scored.
    calls.clear()
    evaluate(fused, ir, vis, metrics=["VIF"])
    assert len(calls) == 3
    # One channel differing in a single pixel is enough to be scored separately.
    calls.clear()
    nearly = gray_rgb[0].copy()
    nearly[0, 0, 2] ^= 1
    evaluate(nearly, ir, gray_rgb[1], metrics=["VIF"])
    assert len(calls) == 2


def test_vifb_gray_fused_with_colour_sources_uses_matlab_rgb2gray(colour_triple):
    fused, ir, vis = colour_triple
    gray_fused = fused[..., 1]
    vis_gray = np.floor(
        vis.astype(np.float64) @ np.array([0.298936021293775, 0.587043074451121, 0.114020904255103]) + 0.5
    )
    out = evaluate(gray_fused, ir, vis, metrics=["MI", "SSIM"])
    ref = evaluate(gray_fused, ir, vis_gray.astype(np.uint8), metrics=["MI", "SSIM"])
    assert out == pytest.approx(ref, rel=1e-12)


# --- inputs ---------------------------------------------------------------------------------


def test_dtypes_and_tensors_give_the_same_scores(colour_triple):
    fused, ir, vis = colour_triple
    names = ["EN", "SD", "MI", "SSIM", "Qabf", "MSE"]
    ref = evaluate(fused, ir, vis, metrics=names)
    as_u16 = evaluate(
        fused.astype(np.uint16) * 257, ir.astype(np.uint16) * 257, vis.astype(np.uint16) * 257, metrics=names
    )
    as_float = evaluate(fused / 255.0, ir / 255.0, vis / 255.0, metrics=names)
    as_tensor = evaluate(
        torch.from_numpy(fused / 255.0).permute(2, 0, 1),
        torch.from_numpy(ir / 255.0)[None, None],
        torch.from_numpy(vis / 255.0).permute(2, 0, 1)[None],
        metrics=names,
    )
    for other in (as_u16, as_float, as_tensor):
        assert other == pytest.approx(ref, rel=1e-9)
    # float32 carries ~1e-7 relative error; histogram levels must still come out the same.
    as_f32 = evaluate(*((x / 255.0).astype(np.float32) for x in (fused, ir, vis)), metrics=names)
    assert as_f32 == pytest.approx(ref, rel=1e-5)
    assert as_f32["EN"] == ref["EN"]


def test_paths_are_read(tmp_path, colour_triple):
    fused, ir, vis = colour_triple
    paths = []
    for name, img in (("f.png", fused), ("i.png", ir), ("v.png", vis)):
        Image.fromarray(img).save(tmp_path / name)
        paths.append(tmp_path / name)
    assert evaluate(*paths, metrics=["EN", "MI"]) == evaluate(fused, ir, vis, metrics=["EN", "MI"])
    assert evaluate(str(paths[0]), ir, vis, metrics=["SD"]) == evaluate(fused, ir, vis, metrics=["SD"])


def test_fusion_evaluator_matches_evaluate_for_each_image(triple, colour_triple):
    fused, ir, _ = triple
    fused_c, _, vis_c = colour_triple
    evaluator = FusionEvaluator(ir, vis_c, metrics=ALL)
    others = [fused_c, np.flipud(fused_c).copy(), fused, fused_c[..., 0]]
    for img in others + others[:1]:  # the cache must not leak results between fused images
        assert evaluator(img) == pytest.approx(evaluate(img, ir, vis_c, metrics=ALL), rel=1e-12, nan_ok=True)


# --- ROI-SSIM -------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_roi_ssim_over_the_whole_image_is_ssim(triple, convention):
    fused, ir, vis = triple
    out = evaluate(fused, ir, vis, metrics=["SSIM", "ROI-SSIM"], convention=convention, roi=[(0, 0, 64, 48)])
    assert out["ROI-SSIM"] == pytest.approx(out["SSIM"], rel=1e-12)
    mask = np.ones((48, 64), dtype=bool)
    assert evaluate(fused, ir, vis, metrics=["ROI-SSIM"], convention=convention, roi=mask)["ROI-SSIM"] == pytest.approx(
        out["SSIM"]
    )


def test_roi_ssim_boxes_equal_masks_and_float_weights_are_scale_free(triple):
    fused, ir, vis = (x.astype(np.float64) for x in triple)
    boxes = np.array([[10, 12, 30, 30], [20.5, 5, 50, 20.2]])
    mask = np.zeros((48, 64), dtype=bool)
    mask[12:30, 10:30] = True
    mask[5:21, 20:50] = True  # fractional coordinates widen to whole pixels
    by_boxes = M.roi_ssim(fused, ir=ir, vis=vis, roi=boxes)
    assert by_boxes == pytest.approx(M.roi_ssim(fused, ir=ir, vis=vis, roi=mask), rel=1e-12)
    assert by_boxes == pytest.approx(M.roi_ssim(fused, ir=ir, vis=vis, roi=mask * 3.0), rel=1e-12)
    assert by_boxes != pytest.approx(M.ssim(fused, ir=ir, vis=vis), rel=1e-6)


def test_roi_ssim_sees_only_the_roi(triple):
    fused, ir, vis = (x.astype(np.float64) for x in triple)
    good = fused.copy()
    good[10:40, 10:40] = vis[10:40, 10:40]
    both = good.copy()
    # Where F equals one source, that source's SSIM map is 1; the other source's map is unchanged.
    roi = [(15, 15, 35, 35)]  # window centres well inside the copied patch
    vis_only = M.roi_ssim(both, ir=vis, vis=vis, roi=roi)
    # float32 SSIM: an image against itself is 1 up to the rounding of the BLAS products, which
    # some CPUs make differ by column (see test_ssim_of_identical_images_is_maximal).
    assert vis_only == pytest.approx(2.0, abs=1e-6)
    spoiled = both.copy()
    spoiled[:, 45:] = 0.0  # outside the ROI and farther than the window radius
    assert M.roi_ssim(spoiled, ir=ir, vis=vis, roi=roi) == pytest.approx(
        M.roi_ssim(both, ir=ir, vis=vis, roi=roi), rel=1e-12
    )


def test_roi_ssim_is_nan_for_an_empty_roi(triple):
    fused, ir, vis = triple
    for roi in ([], np.zeros((0, 4)), [(70, 50, 90, 60)], np.zeros((48, 64), dtype=bool), [(0, 0, 4, 4)]):
        assert math.isnan(evaluate(fused, ir, vis, metrics=["ROI-SSIM"], roi=roi)["ROI-SSIM"])


# --- errors ---------------------------------------------------------------------------------


def test_unknown_metric_names_it_and_the_valid_ones(triple):
    with pytest.raises(ValueError, match=r"'PSNRX'.*EN, SD, SF"):
        evaluate(*triple, metrics=["EN", "PSNRX"])


def test_unknown_convention_names_it_and_the_valid_ones(triple):
    with pytest.raises(ValueError, match=r"'matlab'.*vifb, cddfuse, tang"):
        evaluate(*triple, convention="matlab")
    with pytest.raises(ValueError, match="vifb"):
        M.entropy(np.zeros((3, 3)), convention="VIFB2")


def test_shape_mismatch_reports_the_shapes(triple):
    fused, ir, vis = triple
    with pytest.raises(ValueError, match=r"\(47, 64\).*\(48, 64\)"):
        evaluate(fused[:-1], ir, vis)
    with pytest.raises(ValueError, match=r"shape mismatch"):
        FusionEvaluator(ir, vis[:, :-2])
    with pytest.raises(ValueError, match=r"\(48, 63\)"):
        M.qabf(fused[:, :-1], ir=ir, vis=vis)


def test_bad_inputs_are_rejected(triple):
    fused, ir, vis = triple
    with pytest.raises(ValueError, match="ROI-SSIM needs roi"):
        evaluate(fused, ir, vis, metrics=["ROI-SSIM"])
    with pytest.raises(ValueError, match=r"\(48, 64, 2\)"):
        evaluate(np.zeros((48, 64, 2), np.uint8), ir, vis)
    with pytest.raises(ValueError, match=r"roi"):
        evaluate(fused, ir, vis, roi=np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"x1 >= x0"):
        evaluate(fused, ir, vis, roi=[(10, 0, 5, 5)])
    with pytest.raises(ValueError, match=r"single-channel"):
        M.entropy(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="at least 11"):
        evaluate(fused[:8, :8], ir[:8, :8], vis[:8, :8], metrics=["SSIM"])
    with pytest.raises(TypeError):
        evaluate([[1, 2], [3, 4]], ir, vis)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.full((48, 64), np.nan), ir, vis)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("shape", [(13, 17), (11, 11), (40, 12), (2, 3)])
def test_odd_and_tiny_sizes_work_without_warnings(rng, convention, shape):
    fused, ir, vis = (rng.integers(0, 256, size=shape).astype(np.uint8) for _ in range(3))
    names = ALL if min(shape) >= 11 else [m for m in ALL if m != "SSIM"]
    out = evaluate(fused, ir, vis, metrics=names, convention=convention)
    assert list(out) == names
    assert all(isinstance(v, float) for v in out.values())
    # Definitions that need no window are finite at any size.
    for name in ("EN", "SD", "SF", "AG", "MI", "MSE", "Qabf", "Nabf", "Qcb", "Qcv"):
        assert math.isfinite(out[name]), name


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_constant_images_give_defined_values_or_nan(convention):
    flat = np.full((24, 24), 100, dtype=np.uint8)
    out = evaluate(flat, flat, flat, metrics=ALL, convention=convention)
    assert out["EN"] == out["SD"] == out["SF"] == out["AG"] == out["MSE"] == out["Nabf"] == 0.0
    assert out["PSNR"] == math.inf
    assert math.isnan(out["CC"]) and math.isnan(out["SCD"])  # correlation with a constant image
