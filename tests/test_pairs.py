"""Pair discovery across dataset layouts, and loading pairs with colour and size handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ivfuse.io import ImageReadError, PairError, find_pairs, load_pair, restore_color, write_image


def _touch_img(path, value=0, shape=(8, 10)):
    write_image(path, np.full(shape, value, np.uint8))


@pytest.mark.parametrize(
    "ir_name,vis_name",
    [("ir", "vi"), ("IR", "VI"), ("Inf", "Vis"), ("infrared", "visible"), ("MRI", "CT"), ("MRI", "PET"),
     ("MRI", "SPECT"), ("Ir", "Vis"), ("lwir", "visible")],
)
def test_layouts_are_recognised(tmp_path, ir_name, vis_name):
    for stem in ("001", "002"):
        _touch_img(tmp_path / ir_name / f"{stem}.png")
        _touch_img(tmp_path / vis_name / f"{stem}.png")
    scan = find_pairs(tmp_path)
    assert scan.ir_dir.name == ir_name and scan.vis_dir.name == vis_name
    assert [p.name for p in scan.pairs] == ["001", "002"]


def test_match_by_stem_across_extensions_and_unmatched_listed(tmp_path):
    _touch_img(tmp_path / "ir" / "a.png")
    _touch_img(tmp_path / "vi" / "a.jpg")
    _touch_img(tmp_path / "ir" / "b.bmp")
    _touch_img(tmp_path / "vi" / "c.tif")
    (tmp_path / "vi" / "notes.txt").write_text("not an image, ignored")
    scan = find_pairs(tmp_path)
    assert [(p.name, p.ir.name, p.vis.name) for p in scan.pairs] == [("a", "a.png", "a.jpg")]
    assert sorted(p.name for p in scan.unmatched) == ["b.bmp", "c.tif"]


def test_ambiguous_stems_reported(tmp_path):
    _touch_img(tmp_path / "ir" / "a.png")
    _touch_img(tmp_path / "vi" / "a.png")
    _touch_img(tmp_path / "vi" / "a.jpg")
    scan = find_pairs(tmp_path)
    assert scan.pairs == [] and scan.ambiguous == ["a"]


def test_nested_split_folders_llvip_style(tmp_path):
    _touch_img(tmp_path / "infrared" / "test" / "010001.jpg")
    _touch_img(tmp_path / "visible" / "test" / "010001.jpg")
    _touch_img(tmp_path / "infrared" / "train" / "010001.jpg")
    scan = find_pairs(tmp_path)
    assert [p.name for p in scan.pairs] == ["test/010001"]
    assert [p.parent.name for p in scan.unmatched] == ["train"]


def test_explicit_dirs(tmp_path):
    _touch_img(tmp_path / "thermal_cam" / "x.png")
    _touch_img(tmp_path / "rgb_cam" / "x.png")
    scan = find_pairs(ir_dir=tmp_path / "thermal_cam", vis_dir=tmp_path / "rgb_cam")
    assert len(scan) == 1


def test_missing_and_unrecognised_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        find_pairs(tmp_path / "nowhere")
    (tmp_path / "left").mkdir()
    (tmp_path / "right").mkdir()
    with pytest.raises(ValueError, match=r"no infrared/visible subfolders.*left, right"):
        find_pairs(tmp_path)


def test_load_pair_colour_split_and_restore(rng):
    vis = rng.integers(0, 256, (9, 11, 3)).astype(np.uint8)
    ir = rng.integers(0, 256, (9, 11)).astype(np.uint8)
    pair = load_pair(ir, vis)
    assert pair.ir.shape == (1, 1, 9, 11) and pair.vis.shape == (1, 1, 9, 11) and pair.chroma.shape == (1, 2, 9, 11)
    back = restore_color(pair.vis, pair.chroma)
    assert np.abs(np.round(back * 255) - vis).max() <= 1


def test_load_pair_gray_visible_has_no_chroma(rng):
    pair = load_pair(rng.random((5, 6)), rng.random((5, 6)))
    assert pair.chroma is None
    assert restore_color(pair.vis, None).shape == (5, 6)


def test_colour_infrared_taken_as_gray(rng):
    ir = rng.integers(0, 256, (6, 7, 3)).astype(np.uint8)
    pair = load_pair(ir, ir[..., 0])
    expected = (0.299 * ir[..., 0] + 0.587 * ir[..., 1] + 0.114 * ir[..., 2]) / 255
    assert torch.allclose(pair.ir[0, 0], torch.from_numpy(expected).float(), atol=1e-5)


def test_size_mismatch_error_and_resize(tmp_path, rng):
    write_image(tmp_path / "ir.png", rng.integers(0, 256, (20, 30)).astype(np.uint8))
    write_image(tmp_path / "vi.png", rng.integers(0, 256, (40, 60, 3)).astype(np.uint8))
    with pytest.raises(PairError, match=r"ir\.png.*30x20.*vi\.png.*60x40.*--resize"):
        load_pair(tmp_path / "ir.png", tmp_path / "vi.png")
    pair = load_pair(tmp_path / "ir.png", tmp_path / "vi.png", resize=True)
    assert pair.ir.shape[-2:] == (40, 60) and pair.meta["ir_resized"]


def test_load_pair_bad_file_names_it(tmp_path, rng):
    write_image(tmp_path / "vi.png", rng.integers(0, 256, (4, 4)).astype(np.uint8))
    (tmp_path / "ir.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match=r"ir\.png"):
        load_pair(tmp_path / "ir.png", tmp_path / "vi.png")
