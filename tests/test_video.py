"""fuse-video and eval-video on tiny synthetic clips written with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from ivfuse.cli import main  # noqa: E402
from ivfuse.io import find_pairs, read_image  # noqa: E402


def write_clip(path: Path, frames, fps: int = 10, codec: str = "libx264") -> Path:
    """Encode (H, W, 3) uint8 frames (near-lossless H.264 so that values survive)."""
    h, w = frames[0].shape[:2] if len(frames) else (48, 64)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps, options={"crf": "0", "preset": "ultrafast"} if codec == "libx264" else {})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        if not len(frames):
            c.start_encoding()  # the header of a clip without frames
    return path


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def gray_frames(values, h: int = 48, w: int = 64) -> list[np.ndarray]:
    return [np.full((h, w, 3), v, np.uint8) for v in values]


@pytest.fixture
def clips(tmp_path):
    """IR frame i has gray level 20 + 20 i; the visible clip is black: with --model max, fused = IR."""
    ir = write_clip(tmp_path / "ir.mp4", gray_frames([20 + 20 * i for i in range(8)]))
    vis = write_clip(tmp_path / "vis.mp4", gray_frames([0] * 8))
    return ir, vis


def _run(*args) -> int:
    return main([*map(str, args), "--threads", "1", "-q"])


def test_fuse_video_frame_count_size_and_values(clips, tmp_path):
    ir, vis = clips
    out = tmp_path / "out.mp4"
    assert _run("fuse-video", "--ir", ir, "--vis", vis, "-o", out, "--model", "max") == 0
    frames = decode(out)
    assert len(frames) == 8 and frames[0].shape == (48, 64, 3)
    levels = [float(f.mean()) for f in frames]
    assert levels == pytest.approx([20 + 20 * i for i in range(8)], abs=3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_fuse_video_default_model_keeps_count_and_size(clips, tmp_path):
    ir, vis = clips
    out = tmp_path / "out.mp4"
    assert _run("fuse-video", "--ir", ir, "--vis", vis, "-o", out, "--codec", "mp4v") == 0
    frames = decode(out)
    assert len(frames) == 8 and frames[0].shape == (48, 64, 3)


@pytest.mark.parametrize("offset, every, expected", [(2, 1, [60, 80, 100, 120, 140, 160]),
                                                      (0, 3, [20, 80, 140]),
                                                      (-2, 1, [20, 40, 60, 80, 100, 120])])
def test_offset_and_every_pick_the_right_frames(clips, tmp_path, offset, every, expected):
    ir, vis = clips
    out = tmp_path / "out.mp4"
    assert _run("fuse-video", "--ir", ir, "--vis", vis, "-o", out, "--model", "max",
                f"--offset={offset}", "--every", every) == 0
    assert [float(f.mean()) for f in decode(out)] == pytest.approx(expected, abs=3)


def test_frames_out_is_a_dataset_folder(clips, tmp_path):
    ir, vis = clips
    d = tmp_path / "pairs"
    assert _run("fuse-video", "--ir", ir, "--vis", vis, "--frames-out", d, "--every", 2) == 0
    scan = find_pairs(d)
    assert [p.name for p in scan.pairs] == ["000000", "000002", "000004", "000006"]
    assert read_image(scan.pairs[1].ir).mean() == pytest.approx(60 / 255, abs=0.02)
    assert read_image(scan.pairs[1].vis).shape == (48, 64, 3)
    out = tmp_path / "fused"
    assert _run("fuse", d, "-o", out, "--model", "max") == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.png" for n in ("000000", "000002", "000004", "000006")]


def test_by_time_pairs_streams_of_different_rates(tmp_path):
    ir = write_clip(tmp_path / "ir.mp4", gray_frames([20 + 10 * i for i in range(16)]), fps=20)
    vis = write_clip(tmp_path / "vis.mp4", gray_frames([0] * 8), fps=10)
    out = tmp_path / "out.mp4"
    assert _run("fuse-video", "--ir", ir, "--vis", vis, "-o", out, "--model", "max") == 0
    # visible frame t (at t/10 s) meets infrared frame 2t (at 2t/20 s)
    assert [float(f.mean()) for f in decode(out)] == pytest.approx([20 + 20 * i for i in range(8)], abs=3)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_missing_file(clips, tmp_path, capsys):
    _, vis = clips
    assert _run("fuse-video", "--ir", tmp_path / "nope.mp4", "--vis", vis, "-o", tmp_path / "o.mp4") == 1
    assert "nope.mp4" in _one_line_error(capsys)
    assert not (tmp_path / "o.mp4").exists()


def test_unreadable_video(clips, tmp_path, capsys):
    _, vis = clips
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video at all\n")
    assert _run("fuse-video", "--ir", bad, "--vis", vis, "-o", tmp_path / "o.mp4") == 1
    line = _one_line_error(capsys)
    assert "bad.mp4" in line and "cannot read" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "ir.mp4", "vis.mp4"]


def test_streams_of_different_sizes(clips, tmp_path, capsys):
    ir, _ = clips
    big = write_clip(tmp_path / "big.mp4", gray_frames([0] * 4, 64, 80))
    assert _run("fuse-video", "--ir", ir, "--vis", big, "-o", tmp_path / "o.mp4") == 1
    line = _one_line_error(capsys)
    assert "ir.mp4" in line and "big.mp4" in line and "64x48" in line
    assert not (tmp_path / "o.mp4").exists()


def test_clip_without_frames(clips, tmp_path, capsys):
    ir, _ = clips
    empty = write_clip(tmp_path / "empty.mp4", [])
    assert _run("fuse-video", "--ir", ir, "--vis", empty, "-o", tmp_path / "o.mp4") == 1
    line = _one_line_error(capsys)
    assert "empty.mp4" in line and "no frames" in line
    assert not (tmp_path / "o.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_existing_output_is_kept(clips, tmp_path, capsys):
    ir, vis = clips
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    assert _run("fuse-video", "--ir", ir, "--vis", vis, "-o", out) == 1
    assert "o.mp4" in _one_line_error(capsys)
    assert out.read_bytes() == b"keep me"
    assert _run("fuse-video", "--ir", ir, "--vis", vis, "-o", ir) == 1
    assert "replace the input" in _one_line_error(capsys)


def test_register_once(tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("ivfuse.registration")
    rng = np.random.default_rng(0)
    import cv2

    scene = cv2.GaussianBlur((rng.random((150, 200)) * 255).astype(np.uint8), (0, 0), 2)
    scene = cv2.normalize(scene, None, 0, 255, cv2.NORM_MINMAX)
    vis_f = [np.repeat(scene[10:130, 10:170, None], 3, 2)] * 4
    ir_f = [np.repeat(255 - scene[14:134, 16:176, None], 3, 2)] * 4  # shifted by (6, 4) px, inverted contrast
    ir = write_clip(tmp_path / "ir.mp4", ir_f)
    vis = write_clip(tmp_path / "vis.mp4", vis_f)
    out = tmp_path / "o.mp4"
    d = tmp_path / "pairs"
    from ivfuse.registration import RegistrationError
    from ivfuse.video import fuse_video

    try:
        r = fuse_video(ir, vis, out, "average", register="once", frames_out=d, progress=False)
    except RegistrationError as exc:  # a registration that fails says so in one line naming the clip
        assert "ir.mp4" in str(exc)
        return
    assert r.registered and r.frames == 4 and len(decode(out)) == 4
    warped = read_image(d / "ir" / "000000.png")
    expected = (255 - scene[10:130, 10:170]) / 255
    inner = (slice(10, -10), slice(10, -10))
    assert np.abs(warped[inner] - expected[inner]).mean() < 0.05


def test_eval_video_static_below_flicker(tmp_path):
    pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    import cv2

    base = cv2.GaussianBlur((rng.random((48, 64)) * 255).astype(np.uint8), (0, 0), 1.5)
    frames = [np.repeat(base[..., None], 3, 2)] * 8
    ir = write_clip(tmp_path / "ir.mp4", frames)
    vis = write_clip(tmp_path / "vis.mp4", frames)
    static = write_clip(tmp_path / "static.mp4", frames)
    flicker = write_clip(tmp_path / "flicker.mp4",
                         [np.clip(f.astype(int) + (40 if i % 2 else -40), 0, 255).astype(np.uint8)
                          for i, f in enumerate(frames)])
    from ivfuse.temporal import eval_video

    kw = dict(sample=4, metrics=["EN", "SSIM"], progress=False)
    a, b = eval_video(ir, vis, static, **kw), eval_video(ir, vis, flicker, **kw)
    assert a["frames"] == b["frames"] == 8 and a["metric_frames"] == 2
    assert a["warping_error"]["fused"] < 0.01 < 0.1 < b["warping_error"]["fused"]
    assert b["warping_error"]["vis"] < 0.01 and a["valid_fraction"] > 0.9
    assert set(a["metrics"]) == {"EN", "SSIM"}
    js = tmp_path / "ev.json"
    assert _run("eval-video", "--ir", ir, "--vis", vis, "--fused", flicker, "-o", js, "--metrics", "EN") == 0
    import json

    assert json.loads(js.read_text())["warping_error"]["fused"] == pytest.approx(b["warping_error"]["fused"])


def test_eval_video_frame_count_mismatch(tmp_path, capsys):
    pytest.importorskip("cv2")
    ir = write_clip(tmp_path / "ir.mp4", gray_frames([50] * 8))
    vis = write_clip(tmp_path / "vis.mp4", gray_frames([50] * 8))
    short = write_clip(tmp_path / "short.mp4", gray_frames([50] * 5))
    assert _run("eval-video", "--ir", ir, "--vis", vis, "--fused", short) == 1
    assert "short.mp4" in _one_line_error(capsys)


def test_m3svd_clip_pairs_readable(shared_dir):
    from ivfuse.video import find_clip_pairs
    from ivfuse.video_io import probe

    clips, unmatched = find_clip_pairs(shared_dir / "data/video/m3svd/ir", shared_dir / "data/video/m3svd/vi")
    assert len(clips) == 2 and not unmatched
    info = probe(clips[0][1])
    assert (info.width, info.height) == (640, 480) and info.frames > 100


def test_two_onnxruntime_workers_keep_frame_order(clips, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from ivfuse.video import fuse_video

    ir, vis = clips
    out = tmp_path / "out.mp4"
    r = fuse_video(ir, vis, out, "max", backend="onnxruntime", workers=2, progress=False)
    assert r.frames == 8
    assert [float(f.mean()) for f in decode(out)] == pytest.approx([20 + 20 * i for i in range(8)], abs=3)
