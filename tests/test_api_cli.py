"""End to end through the API and the ``ivfuse`` command: colour, sizes, bad input, folders, demo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import ivfuse
from ivfuse.cli import main
from ivfuse.io import read_array, write_image


def _luma_u8(rgb):
    return np.round(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)


def _smooth_rgb(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 200 / w + 20, yy * 180 / h + 30, 128 + 60 * np.sin(xx / 5.0)], -1)
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("model", ["average", "max", "laplacian", "dwt", "gff"])
def test_ir_equal_to_visible_luma_returns_visible(tmp_path, rng, model):
    vis = _smooth_rgb(rng, 45, 67)
    write_image(tmp_path / "vi.png", vis)
    write_image(tmp_path / "ir.png", _luma_u8(vis))
    assert main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vi.png"),
                 "-o", str(tmp_path / "f.png"), "--model", model]) == 0
    out = read_array(tmp_path / "f.png")
    assert out.shape == vis.shape and out.dtype == np.uint8
    # Y is rounded to 8 bits for the infrared file, then chroma is restored: a couple of levels at most.
    assert np.abs(out.astype(int) - vis).max() <= 2


def test_output_keeps_colour_and_size_and_16bit(tmp_path, rng):
    vis16 = (_smooth_rgb(rng, 30, 41).astype(np.uint16) * 257)
    write_image(tmp_path / "vi.png", vis16, bit_depth=16)
    write_image(tmp_path / "ir.png", rng.integers(0, 65536, (30, 41)).astype(np.uint16), bit_depth=16)
    res = ivfuse.fuse(tmp_path / "ir.png", tmp_path / "vi.png", "average", output=tmp_path / "f.tif", bit_depth=16)
    assert res.shape == (30, 41, 3)
    out = read_array(tmp_path / "f.tif")
    assert out.dtype == np.uint16 and out.shape == (30, 41, 3)
    assert len(np.unique(out)) > 256  # genuinely 16-bit, not 8-bit scaled up


def test_gray_visible_gives_gray_output(tmp_path, rng):
    write_image(tmp_path / "vi.png", rng.integers(0, 256, (12, 13)).astype(np.uint8))
    write_image(tmp_path / "ir.png", rng.integers(0, 256, (12, 13)).astype(np.uint8))
    assert main(["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vi.png"),
                 "-o", str(tmp_path / "f.png")]) == 0
    assert read_array(tmp_path / "f.png").shape == (12, 13)


def test_medical_pet_supplies_chroma(tmp_path, rng):
    """MRI (gray) plays the infrared role; the colour PET image's chroma survives in the result."""
    root = tmp_path / "MRI_PET"
    pet = np.zeros((32, 32, 3), np.uint8)
    pet[8:24, 8:24] = (220, 60, 30)  # a red hot spot
    mri = rng.integers(60, 200, (32, 32)).astype(np.uint8)
    write_image(root / "PET" / "p1.png", pet)
    write_image(root / "MRI" / "p1.png", mri)
    assert main(["fuse", str(root), "-o", str(tmp_path / "out"), "-q"]) == 0
    out = read_array(tmp_path / "out" / "p1.png").astype(int)
    assert out.shape == (32, 32, 3)
    assert (out[16, 16, 0] - out[16, 16, 2]) > 60  # still red where PET was red
    assert abs(out[2, 2, 0] - out[2, 2, 2]) <= 2  # gray where PET was black


def test_folder_run_goes_past_corrupt_pair(tmp_path, rng, capsys):
    root = tmp_path / "ds"
    for stem in ("a", "b", "c"):
        write_image(root / "ir" / f"{stem}.png", rng.integers(0, 256, (16, 20)).astype(np.uint8))
        write_image(root / "vi" / f"{stem}.jpg", rng.integers(0, 256, (16, 20, 3)).astype(np.uint8))
    data = (root / "ir" / "b.png").read_bytes()
    (root / "ir" / "b.png").write_bytes(data[: len(data) // 3])  # truncated
    write_image(root / "ir" / "lonely.png", np.zeros((4, 4), np.uint8))
    code = main(["fuse", str(root), "-o", str(tmp_path / "out"), "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    assert "1 pairs failed" in captured.err and "b.png" in captured.err
    assert "lonely.png" in captured.out


def test_folder_api_reports_size_mismatch_and_resize_fixes_it(tmp_path, rng):
    root = tmp_path / "ds"
    write_image(root / "IR" / "x.png", rng.integers(0, 256, (10, 10)).astype(np.uint8))
    write_image(root / "VI" / "x.png", rng.integers(0, 256, (20, 20)).astype(np.uint8))
    res = ivfuse.fuse_folder(root, tmp_path / "o1", "average", progress=False)
    assert not res.ok and "size mismatch" in res.failed[0][1] and not (tmp_path / "o1" / "x.png").exists()
    res = ivfuse.fuse_folder(root, tmp_path / "o2", "average", resize=True, progress=False)
    assert res.ok and read_array(tmp_path / "o2" / "x.png").shape == (20, 20)


def test_batched_folder_equals_unbatched(tmp_path, rng):
    root = tmp_path / "ds"
    for i, shape in enumerate([(16, 20), (16, 20), (17, 21), (16, 20)]):
        write_image(root / "ir" / f"{i}.png", rng.integers(0, 256, shape).astype(np.uint8))
        write_image(root / "vi" / f"{i}.png", rng.integers(0, 256, shape + (3,)).astype(np.uint8))
    ivfuse.fuse_folder(root, tmp_path / "b1", "laplacian", progress=False)
    ivfuse.fuse_folder(root, tmp_path / "b3", "laplacian", progress=False, batch_size=3)
    for i in range(4):
        assert np.array_equal(read_array(tmp_path / "b1" / f"{i}.png"), read_array(tmp_path / "b3" / f"{i}.png"))


@pytest.mark.parametrize("case", ["missing", "not_image", "empty_dir", "no_pairs", "size"])
def test_bad_input_clear_error_nothing_written(tmp_path, rng, capsys, case):
    out = tmp_path / "out.png"
    good = tmp_path / "good.png"
    write_image(good, rng.integers(0, 256, (8, 8)).astype(np.uint8))
    if case == "missing":
        args, expect = ["--ir", str(tmp_path / "nope.png"), "--vis", str(good)], "nope.png': file not found"
    elif case == "not_image":
        (tmp_path / "t.png").write_text("text")
        args, expect = ["--ir", str(tmp_path / "t.png"), "--vis", str(good)], "t.png': not an image"
    elif case == "size":
        write_image(tmp_path / "big.png", np.zeros((9, 8), np.uint8))
        args, expect = ["--ir", str(tmp_path / "big.png"), "--vis", str(good)], "size mismatch"
    elif case == "empty_dir":
        (tmp_path / "ds").mkdir()
        args, expect = [str(tmp_path / "ds")], "no infrared/visible subfolders"
        out = tmp_path / "outdir"
    else:
        (tmp_path / "ds" / "ir").mkdir(parents=True)
        (tmp_path / "ds" / "vi").mkdir()
        args, expect = [str(tmp_path / "ds")], "no infrared/visible pairs"
        out = tmp_path / "outdir"
    assert main(["fuse", *args, "-o", str(out)]) == 1
    assert expect in capsys.readouterr().err
    assert not out.exists()


def test_models_command_lists_default_and_weights(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert f"{ivfuse.DEFAULT_MODEL}*" in text
    assert "training-free" in text
    assert main(["models", "zzz*"]) == 1


def test_unknown_model_is_clear(tmp_path, rng, capsys):
    write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    assert main(["fuse", "--ir", str(tmp_path / "a.png"), "--vis", str(tmp_path / "a.png"), "-o",
                 str(tmp_path / "o.png"), "--model", "nosuch"]) == 1
    assert "unknown model 'nosuch'" in capsys.readouterr().err


def test_model_arg_builds_the_shipped_weights_with_the_setting_over_the_cards(tmp_path, rng, capsys):
    from ivfuse import api
    from ivfuse.models import create_model

    vis = _luma_u8(_smooth_rgb(rng, 64, 80))
    ir = np.full_like(vis, 200)  # a bright, flat infrared: the contrast ratio decides how much of it shows
    ir[20:40, 30:50] = 250
    write_image(tmp_path / "vi.png", vis)
    write_image(tmp_path / "ir.png", ir)
    common = ["fuse", "--ir", str(tmp_path / "ir.png"), "--vis", str(tmp_path / "vi.png"), "--model",
              "fusionnet_cpu", "-q"]
    assert main(common + ["-o", str(tmp_path / "card.png")]) == 0
    assert main(common + ["-o", str(tmp_path / "arg.png"), "--model-arg", "contrast_ratio=0"]) == 0
    assert "with contrast_ratio=0" in capsys.readouterr().out
    net = create_model("fusionnet_cpu", pretrained=True, contrast_ratio=0)
    assert net.blend.detail_gain == create_model("fusionnet_cpu").blend.detail_gain  # the card's other settings
    api.fuse(tmp_path / "ir.png", tmp_path / "vi.png", net, output=tmp_path / "api.png")
    card, arg = read_array(tmp_path / "card.png").astype(int), read_array(tmp_path / "arg.png").astype(int)
    assert np.array_equal(arg, read_array(tmp_path / "api.png").astype(int))
    assert np.abs(card - arg).mean() > 2  # the setting is applied, not ignored


@pytest.mark.parametrize("spec, message", [("contrast_ratio", "KEY=VALUE"), ("no_such_arg=1", "does not take")])
def test_model_arg_errors_are_clear(tmp_path, rng, capsys, spec, message):
    img = _luma_u8(_smooth_rgb(rng, 16, 16))
    write_image(tmp_path / "a.png", img)
    assert main(["fuse", "--ir", str(tmp_path / "a.png"), "--vis", str(tmp_path / "a.png"), "-o",
                 str(tmp_path / "o.png"), "--model", "fusionnet_cpu", "--model-arg", spec]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
    assert main(["fuse", "--ir", str(tmp_path / "a.png"), "--vis", str(tmp_path / "a.png"), "-o",
                 str(tmp_path / "o.png"), "--model-arg", "detail_gain=1", "--backend", "onnxruntime"]) == 1
    assert "needs --backend torch" in capsys.readouterr().err


def test_demo_writes_three_images_and_target_is_visible_only_after_fusion(tmp_path):
    from ivfuse.demo import make_demo_pair

    assert main(["demo", "-o", str(tmp_path)]) == 0
    ir, vis, fused = (read_array(tmp_path / f"demo_{k}.png") for k in ("ir", "vis", "fused"))
    assert fused.shape == vis.shape and fused.ndim == 3
    _, _, target = make_demo_pair()
    ring = np.zeros_like(target)
    ys, xs = np.nonzero(target)
    ring[ys.min() - 4 : ys.max() + 5, xs.min() - 8 : xs.max() + 9] = True
    ring &= ~target
    vis_y, fused_y = _luma_u8(vis).astype(float), _luma_u8(fused).astype(float)
    assert abs(vis_y[target].mean() - vis_y[ring].mean()) < 5  # hidden in the visible image
    assert fused_y[target].mean() - fused_y[ring].mean() > 30  # revealed by fusion
    # The visible texture (absent from the infrared) survives: local variation on the ground.
    assert fused_y[200:230, 10:60].std() > 0.5 * vis_y[200:230, 10:60].std()


def test_console_script_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ivfuse.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "ivfuse" in proc.stdout


@pytest.mark.parametrize("sub", ["tno", "samples"])
def test_shared_test_sets(shared_dir, tmp_path, sub):
    src = shared_dir / "data" / "test" / sub
    res = ivfuse.fuse_folder(src, tmp_path, "average", progress=False)
    assert res.ok and not res.unmatched
    if sub == "tno":
        assert len(res.written) == 25
    else:
        out = read_array(res.written[0])
        assert out.shape == (768, 1024, 3)
        assert np.abs(out[..., 0].astype(int) - out[..., 2]).mean() > 3  # colour, not gray
