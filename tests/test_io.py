"""Image I/O: every format and bit depth round-trips; bad files give clear errors; writes are atomic."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ivfuse.io import ImageReadError, read_array, read_image, to_float, write_image

LOSSLESS = [".png", ".bmp", ".tif", ".tiff"]


def _img(rng, dtype, channels, h=23, w=37):
    hi = 255 if dtype == np.uint8 else 65535
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, hi + 1, size=shape).astype(dtype)


@pytest.mark.parametrize("ext", LOSSLESS)
@pytest.mark.parametrize("channels", [1, 3])
def test_roundtrip_8bit_lossless(tmp_path, rng, ext, channels):
    a = _img(rng, np.uint8, channels)
    p = write_image(tmp_path / f"x{ext}", a)
    b = read_array(p)
    assert b.dtype == np.uint8 and b.shape == a.shape
    assert np.array_equal(a, b)


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_roundtrip_16bit(tmp_path, rng, ext, channels):
    a = _img(rng, np.uint16, channels)
    p = write_image(tmp_path / f"x{ext}", a, bit_depth=16)
    b = read_array(p)
    assert b.dtype == np.uint16 and b.shape == a.shape
    assert np.array_equal(a, b)


def test_float_to_16bit_keeps_precision(tmp_path):
    ramp = np.linspace(0, 1, 1000, dtype=np.float32).reshape(10, 100)
    p = write_image(tmp_path / "ramp.png", ramp, bit_depth=16)
    back = read_image(p)
    assert np.abs(back - ramp).max() <= 0.5 / 65535 + 1e-7
    assert len(np.unique(read_array(p))) == 1000  # 8 bits could hold only 256 levels


@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_jpeg_roundtrip_close(tmp_path, ext):
    yy, xx = np.mgrid[0:40, 0:60]
    a = np.stack([xx * 4, yy * 6, (xx + yy) * 2], -1).astype(np.uint8)
    b = read_array(write_image(tmp_path / f"x{ext}", a, quality=98))
    assert b.shape == a.shape and b.dtype == np.uint8
    assert np.abs(b.astype(int) - a).mean() < 2.0


def test_rgba_and_gray_alpha_drop_alpha(tmp_path, rng):
    rgba = _img(rng, np.uint8, 4)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    got = read_array(tmp_path / "a.png")
    assert got.shape == rgba.shape[:2] + (3,) and np.array_equal(got, rgba[..., :3])
    la = _img(rng, np.uint8, 2)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    got = read_array(tmp_path / "la.png")
    assert got.shape == la.shape[:2] and np.array_equal(got, la[..., 0])


def test_palette_image_reads_as_rgb(tmp_path, rng):
    rgb = _img(rng, np.uint8, 3)
    Image.fromarray(rgb).quantize(16).save(tmp_path / "p.png")
    got = read_array(tmp_path / "p.png")
    assert got.shape == rgb.shape and got.dtype == np.uint8


def test_gray_stored_as_rgb_stays_three_channels(tmp_path, rng):
    g = _img(rng, np.uint8, 1)
    write_image(tmp_path / "g.png", np.stack([g] * 3, -1))
    got = read_array(tmp_path / "g.png")
    assert got.shape == g.shape + (3,)
    assert np.array_equal(got[..., 0], got[..., 2])


def test_to_float_scaling():
    assert to_float(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]
    assert to_float(np.array([0, 65535], np.uint16)).tolist() == [0.0, 1.0]


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"nope\.png.*not found"):
        read_array(tmp_path / "nope.png")


def test_empty_file(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"e\.png.*empty"):
        read_array(tmp_path / "e.png")


def test_not_an_image(tmp_path):
    (tmp_path / "t.png").write_text("hello, I am text")
    with pytest.raises(ImageReadError, match=r"t\.png.*not an image"):
        read_array(tmp_path / "t.png")


def test_directory(tmp_path):
    with pytest.raises(ImageReadError, match="directory"):
        read_array(tmp_path)


@pytest.mark.parametrize("ext,bits", [(".png", 8), (".jpg", 8), (".png", 16), (".tif", 8)])
def test_truncated_file(tmp_path, rng, ext, bits):
    a = _img(rng, np.uint16 if bits == 16 else np.uint8, 3, 64, 64)
    p = write_image(tmp_path / f"full{ext}", a, bit_depth=bits)
    data = p.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\."):
        read_array(cut)


def test_write_rejects_bad_requests(tmp_path):
    img = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="16-bit"):
        write_image(tmp_path / "a.jpg", img, bit_depth=16)
    with pytest.raises(ValueError, match="extension"):
        write_image(tmp_path / "a.gif", img)
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 2)))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    """A crash while encoding leaves the previous file intact and no temporary file behind."""
    target = tmp_path / "out.png"
    old = np.full((5, 5), 7, np.uint8)
    write_image(target, old)

    import ivfuse.io.image as io_mod  # write_image looks _encode up here

    def boom(fh, img, ext, quality):
        fh.write(b"\x89PNG partial")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(io_mod, "_encode", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_image(target, np.zeros((5, 5), np.uint8))
    assert np.array_equal(read_array(target), old)
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_atomic_write_new_file_absent_on_failure(tmp_path, monkeypatch):
    import ivfuse.io.image as io_mod  # write_image looks _encode up here

    monkeypatch.setattr(io_mod, "_encode", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "new.png", np.zeros((3, 3)))
    assert list(Path(tmp_path).iterdir()) == []


def test_written_files_get_normal_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        p = write_image(tmp_path / "perm.png", np.zeros((3, 3), np.uint8))
    finally:
        os.umask(mask)
    assert (p.stat().st_mode & 0o777) == 0o644


def test_package_reexports_every_public_name_once():
    import ivfuse.io as io
    from ivfuse.io import discovery, formats, image, pair, paths

    modules = (discovery, formats, image, pair, paths)
    assert sorted(io.__all__) == sorted(n for m in modules for n in m.__all__)
    for m in modules:
        for name in m.__all__:
            assert getattr(io, name) is getattr(m, name)
    assert io._as_gray is io.as_gray  # the old private spelling still works


def test_as_gray_is_bt601_luminance():
    from ivfuse.io import as_gray

    rgb = np.zeros((2, 3, 3), np.float32)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1.0, 0.5, 0.25
    g = as_gray(rgb)
    assert g.shape == (2, 3) and g.dtype == np.float32
    assert np.allclose(g, 0.299 + 0.587 * 0.5 + 0.114 * 0.25)
    gray = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    assert as_gray(gray) is gray


def test_png_written_at_the_fast_zlib_level(tmp_path, rng):
    import io as _io

    from ivfuse.io.image import PNG_COMPRESS_LEVEL

    img = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    path = write_image(tmp_path / "f.png", img.astype(np.float32) / 255)
    fast, default = _io.BytesIO(), _io.BytesIO()
    Image.fromarray(img).save(fast, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    Image.fromarray(img).save(default, format="PNG")
    assert PNG_COMPRESS_LEVEL == 1 and path.read_bytes() == fast.getvalue() != default.getvalue()
    assert np.array_equal(np.asarray(Image.open(path)), img)  # still lossless
