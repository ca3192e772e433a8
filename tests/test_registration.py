"""Registration: recovered transforms, refusals, batch outputs, CLI, fuse --register."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from ivfuse.io import read_image, write_image  # noqa: E402
from ivfuse.registration import Registration, RegistrationError, estimate, register  # noqa: E402
from ivfuse.registration.transform import map_points  # noqa: E402


def _texture(seed: int, size=(240, 320)) -> np.ndarray:
    """A textured scene: blobs at several scales plus rectangles, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.zeros(size, np.float32)
    for sigma, amp in ((12, 1.0), (4, 0.6), (1.5, 0.3)):
        img += amp * cv2.GaussianBlur(rng.standard_normal(size).astype(np.float32), (0, 0), sigma) * sigma
    for _ in range(12):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        img[y : y + int(rng.integers(10, 40)), x : x + int(rng.integers(10, 40))] += float(rng.uniform(-2, 2))
    img -= img.min()
    return (img / img.max()).astype(np.float32)


def _similarity(scale, angle, tx, ty):
    a = math.radians(angle)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty],
                     [0, 0, 1.0]])


def _moving_from(fixed: np.ndarray, hom: np.ndarray, shape) -> np.ndarray:
    """The moving image whose pixels map to ``fixed`` through ``hom`` (moving -> fixed)."""
    return cv2.warpPerspective(fixed, hom, (shape[1], shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT_101)


def _corner_error(est: np.ndarray, true: np.ndarray, shape) -> float:
    h, w = shape
    c = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
    return float(np.hypot(*(map_points(est, c) - map_points(true, c)).T).max())


def test_recovers_known_homography_across_inverted_contrast():
    fixed = _texture(0)
    true = _similarity(1.03, 2.5, -6.0, 4.0)
    moving = 1.0 - _moving_from(fixed, true, fixed.shape)  # the other modality: inverted intensities
    reg = estimate(fixed, moving, name="synthetic")
    assert _corner_error(reg.homography, true, moving.shape) < 1.5
    assert reg.inliers >= 12
    out, valid = reg.apply(1.0 - moving)
    assert valid.mean() > 0.8
    assert np.abs(out - fixed)[valid].mean() < 0.03


def test_moving_inside_wider_fixed_field():
    scene = _texture(1, (360, 480))
    true = _similarity(1.0, 1.5, 90.0, 70.0)  # a 180x240 view inside the wide one
    moving = _moving_from(scene, true, (180, 240))
    reg = estimate(scene, moving, name="wide")
    assert reg.coarse_scale == pytest.approx(1.0, abs=0.08)
    assert _corner_error(reg.homography, true, moving.shape) < 2.0


def test_flat_image_is_refused_by_name():
    fixed = _texture(2)
    with pytest.raises(RegistrationError, match="'flat01'.*no texture"):
        estimate(fixed, np.full_like(fixed, 0.4), name="flat01")


def test_json_round_trip_and_flow_shape():
    fixed = _texture(3)
    moving = _moving_from(fixed, _similarity(1.0, 1.0, 3.0, -2.0), fixed.shape)
    reg = estimate(fixed, moving, method="both", name="rt")
    assert reg.flow is not None and reg.flow.shape == (*fixed.shape, 2) and reg.flow.dtype == np.float32
    back = Registration.from_json(json.loads(json.dumps(reg.to_json())), flow=reg.flow)
    np.testing.assert_allclose(back.homography, reg.homography)
    a, va = reg.apply(moving)
    b, vb = back.apply(moving)
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_allclose(a, b)


def test_flow_reduces_a_smooth_nonrigid_deformation():
    fixed = _texture(4)
    h, w = fixed.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = 3.0 * np.sin(xs / 60.0) * np.cos(ys / 50.0)
    dy = 2.0 * np.cos(xs / 45.0)
    moving = cv2.remap(fixed, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    reg = estimate(fixed, moving, method="flow", name="bend")
    out, valid = reg.apply(moving)
    inner = valid.copy()
    inner[:20], inner[-20:], inner[:, :20], inner[:, -20:] = False, False, False, False
    assert np.abs(out - fixed)[inner].mean() < 0.6 * np.abs(moving - fixed)[inner].mean()


def _folder_pairs(tmp_path: Path, n: int = 3, bad: str | None = None) -> tuple[Path, Path, np.ndarray]:
    ir_dir, vi_dir = tmp_path / "in" / "ir", tmp_path / "in" / "vi"
    true = _similarity(1.0, 2.0, 5.0, -4.0)
    for i in range(n):
        vis = _texture(10 + i)
        ir = 1.0 - _moving_from(vis, true, vis.shape)
        write_image(vi_dir / f"p{i}.png", vis)
        write_image(ir_dir / f"p{i}.png", np.full_like(ir, 0.5) if f"p{i}" == bad else ir)
    return ir_dir, vi_dir, true


def test_batch_goes_on_past_a_bad_pair_and_writes_everything(tmp_path):
    ir_dir, vi_dir, true = _folder_pairs(tmp_path, 3, bad="p1")
    out = tmp_path / "out"
    res = register(ir_dir, vi_dir, out)
    assert res.done == ["p0", "p2"]
    assert [n for n, _ in res.failed] == ["p1"] and "no texture" in res.failed[0][1]
    for name in res.done:
        for rel in (f"ir/{name}.png", f"vi/{name}.png", f"transforms/{name}.json", f"mask/{name}.png",
                    f"overlay/{name}.png"):
            assert (out / rel).is_file(), rel
        d = json.loads((out / "transforms" / f"{name}.json").read_text())
        assert _corner_error(np.array(d["homography"]), true, (240, 320)) < 2.0
        mask = read_image(out / "mask" / f"{name}.png")
        assert 0.8 < (mask > 0.5).mean() < 1.0
    assert not list(out.rglob("p1*"))  # nothing of the failed pair
    assert not list(out.rglob("*.part"))  # nothing half-written
    assert (out / "vi" / "p0.png").read_bytes() == (vi_dir / "p0.png").read_bytes()  # fixed image copied


def test_refuses_to_overwrite_and_to_write_into_input(tmp_path):
    ir_dir, vi_dir, _ = _folder_pairs(tmp_path, 1)
    out = tmp_path / "out"
    assert register(ir_dir, vi_dir, out).done == ["p0"]
    before = (out / "ir" / "p0.png").stat().st_mtime_ns
    again = register(ir_dir, vi_dir, out)
    assert again.skipped == ["p0"] and not again.done
    assert (out / "ir" / "p0.png").stat().st_mtime_ns == before
    assert register(ir_dir, vi_dir, out, overwrite=True).done == ["p0"]
    with pytest.raises(ValueError, match="inside the input folder"):
        register(ir_dir, vi_dir, ir_dir / "reg")


def test_fixed_rig_applies_one_transform_to_all(tmp_path):
    ir_dir, vi_dir, true = _folder_pairs(tmp_path, 3)
    res = register(ir_dir, vi_dir, tmp_path / "out", fixed_rig=2)
    assert res.rig is not None and res.done == ["p0", "p1", "p2"]
    homs = [np.array(json.loads((tmp_path / "out" / "transforms" / f"p{i}.json").read_text())["homography"])
            for i in range(3)]
    for h in homs:
        np.testing.assert_allclose(h, res.rig.homography)
    assert _corner_error(res.rig.homography, true, (240, 320)) < 2.0


def test_cli_end_to_end(tmp_path, capsys):
    from ivfuse.cli import main

    ir_dir, vi_dir, _ = _folder_pairs(tmp_path, 2, bad="p1")
    out = tmp_path / "out"
    code = main(["register", "--ir", str(ir_dir), "--vis", str(vi_dir), "-o", str(out), "--method", "both"])
    captured = capsys.readouterr()
    assert code == 1  # one pair failed
    assert "failed p1" in captured.err and "no texture" in captured.err
    assert "registered 1 pairs" in captured.out
    flow = np.load(out / "transforms" / "p0.npy")
    assert flow.shape == (240, 320, 2)
    code = main(["register", "--ir", str(ir_dir / "p0.png"), "--vis", str(vi_dir / "p0.png"), "-o", str(out)])
    assert code == 1 and "kept" in capsys.readouterr().err  # exists, not overwritten


def test_fuse_register_end_to_end(tmp_path):
    from ivfuse.cli import main

    ir_dir, vi_dir, true = _folder_pairs(tmp_path, 1)
    ir_dir2 = tmp_path / "in2" / "ir"
    shifted = _moving_from(read_image(ir_dir / "p0.png"), _similarity(1.0, 0.0, 0.0, 0.0), (200, 280))
    write_image(ir_dir2 / "p0.png", shifted)  # a smaller infrared image: fusion needs registration
    out = tmp_path / "fused.png"
    assert main(["fuse", "--ir", str(ir_dir2 / "p0.png"), "--vis", str(vi_dir / "p0.png"), "-o", str(out),
                 "--model", "average"]) == 1  # sizes differ without --register
    assert main(["fuse", "--ir", str(ir_dir2 / "p0.png"), "--vis", str(vi_dir / "p0.png"), "-o", str(out),
                 "--model", "average", "--register"]) == 0
    fused = read_image(out)
    assert fused.shape == (240, 320)
    from ivfuse import api

    folder = api.fuse_folder(None, tmp_path / "fused_dir", "average", ir_dir=ir_dir2, vis_dir=vi_dir,
                             register="homography", progress=False)
    assert folder.ok and len(folder.written) == 1


def test_shared_deformed_pairs_get_better(shared_dir):
    base = shared_dir / "data" / "register" / "roadscene"
    if not base.is_dir():
        pytest.skip("register data not available")
    from ivfuse.registration.features import as_gray

    for name in ("35", "74"):
        ir = as_gray(read_image(base / "ir" / f"{name}.png"))
        warp = as_gray(read_image(base / "ir_warp" / f"{name}.png"))
        reg = estimate(read_image(base / "vi" / f"{name}.png"), warp, method="flow", name=name)
        out, valid = reg.apply(warp)
        ratio = np.abs(out - ir)[valid].mean() / np.abs(warp - ir)[valid].mean()
        assert ratio < 0.6, (name, ratio)


def test_structure_search_recovers_similarity_across_inverted_contrast():
    from ivfuse.registration.features import structure_map
    from ivfuse.registration.refine import refine_global, structure_ncc

    fixed = _texture(4)
    true = _similarity(1.04, 2.0, -5.0, 3.0)
    moving = 1.0 - _moving_from(fixed, true, fixed.shape)  # inverted intensities, like the other modality
    fs, ms = structure_map(fixed), structure_map(moving)
    start = _similarity(1.0, 0.5, -1.0, 6.0)  # a coarse start several pixels off
    assert _corner_error(start, true, moving.shape) > 5
    hom, score = refine_global(fs, ms, start)
    assert _corner_error(hom, true, moving.shape) < 1.0
    assert score > structure_ncc(cv2.GaussianBlur(fs, (0, 0), 1.0), cv2.GaussianBlur(ms, (0, 0), 1.0), start)


def test_pair_whose_keypoints_fail_is_registered_by_the_structure_search():
    from ivfuse.registration import RegistrationParams

    fixed = _texture(5)
    true = _similarity(0.97, -1.5, 4.0, -3.0)
    moving = 1.0 - _moving_from(fixed, true, fixed.shape)
    strict = RegistrationParams(min_inlier_ratio=1.01)  # no keypoint result can pass
    reg = estimate(fixed, moving, name="nokp", params=strict)
    assert reg.extra["fine"] == "structure" and "too few" in reg.extra["keypoint_error"]
    assert _corner_error(reg.homography, true, moving.shape) < 1.0
    with pytest.raises(RegistrationError, match="'nokp'.*too few"):
        estimate(fixed, moving, name="nokp", params=RegistrationParams(min_inlier_ratio=1.01, refine="none"))


def test_coarse_start_is_refined_in_a_wider_field():
    scene = _texture(6, (360, 480))
    true = _similarity(1.1, 2.0, 100.0, 60.0)
    moving = 1.0 - _moving_from(scene, true, (180, 240))
    reg = estimate(scene, moving, name="wide2")
    assert _corner_error(reg.homography, true, moving.shape) < 1.0
