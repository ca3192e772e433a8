"""Video streams: probe, decode, pair two streams frame by frame, encode atomically.

Decoding and encoding use PyAV (the ``video`` extra: ``pip install 'ivfuse[video]'``), which
bundles FFmpeg, so nothing else needs installing. Frames are uint8 RGB arrays (H, W, 3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ._extras import require
from .io.image import as_gray

__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "FramePair", "VideoWriter", "probe", "read_frames", "pair_frames",
           "check_video_output", "frame_luma"]

#: Output containers and the FFmpeg muxer each one uses.
VIDEO_EXTENSIONS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}

#: ``--codec`` names and the FFmpeg encoders behind them.
CODECS = {"h264": "libx264", "mp4v": "mpeg4"}


def _av():
    return require("av", "video", "reading and writing videos")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: its first video stream's size, rate and length.

    Attributes:
        path: the file.
        width, height: frame size in pixels.
        fps: average frame rate (frames per second).
        frames: frame count from the container (0 when it does not say; decoding counts then).
        codec: the stream's codec name.
    """

    path: Path
    width: int
    height: int
    fps: float
    frames: int
    codec: str


def _open(path: Path):
    av = _av()
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory (expected a video file)", str(path))
    try:
        container = av.open(str(path), "r")
    except av.FFmpegError as exc:
        raise ValueError(f"'{path}': cannot read as a video ({exc.strerror or type(exc).__name__})") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"'{path}': no frames (the file has no video stream)")
    return container


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's header.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: not a readable video, or no video stream (the message names the file).
    """
    p = Path(path)
    with _open(p) as c:
        s = c.streams.video[0]
        rate = s.average_rate or s.base_rate or Fraction(0)
        return VideoInfo(p, int(s.codec_context.width), int(s.codec_context.height), float(rate), int(s.frames or 0),
                         s.codec_context.name)


def read_frames(path: str | os.PathLike) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode every frame of a video's first video stream.

    Yields:
        (index, time in seconds, RGB uint8 array (H, W, 3)).

    Raises:
        ValueError: unreadable video, a corrupt frame, or no frame at all (names the file).
    """
    p = Path(path)
    av = _av()
    with _open(p) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        rate = float(s.average_rate or 0) or 30.0
        n = 0
        try:
            for frame in c.decode(s):
                t = float(frame.time) if frame.time is not None else n / rate
                yield n, t, frame.to_ndarray(format="rgb24")
                n += 1
        except av.FFmpegError as exc:
            raise ValueError(f"'{p}': cannot decode frame {n} ({exc.strerror or type(exc).__name__})") from None
    if n == 0:
        raise ValueError(f"'{p}': the video has no frames")


@dataclass
class FramePair:
    """One infrared/visible frame pair: indices and times in their streams, RGB uint8 frames."""

    ir_index: int
    vis_index: int
    time: float
    ir: np.ndarray
    vis: np.ndarray


def pair_frames(ir_path, vis_path, *, offset: int = 0, every: int = 1, by_time: bool | None = None,
                same_size: bool = True) -> Iterator[FramePair]:
    """Pair the frames of an infrared and a visible video.

    Visible frame t goes with infrared frame t + ``offset`` (by index), or, when the frame rates
    differ (``by_time=None`` decides so, or force it with True), with the infrared frame whose
    timestamp is nearest to visible frame t's time plus ``offset`` infrared frame periods.
    Pairs run while both streams have frames; every ``every``-th pair is kept (0, every, 2*every, ...).
    ``same_size=False`` lets the streams differ in frame size (when the infrared is registered onto the visible).

    Raises:
        ValueError: a stream is unreadable or empty, the streams differ in size, bad offset/every.
    """
    if every < 1:
        raise ValueError(f"--every must be at least 1, got {every}")
    ir_info, vis_info = probe(ir_path), probe(vis_path)
    if same_size and (ir_info.width, ir_info.height) != (vis_info.width, vis_info.height):
        raise ValueError(
            f"'{ir_path}' is {ir_info.width}x{ir_info.height} but '{vis_path}' is {vis_info.width}x{vis_info.height}: "
            "the streams must have one frame size (width x height)")
    if by_time is None:
        by_time = abs(ir_info.fps - vis_info.fps) > 1e-3 * max(ir_info.fps, vis_info.fps, 1.0)
    ir_iter = read_frames(ir_path)
    kept = 0
    if not by_time:
        ir_cur = None
        for vi, vt, vframe in read_frames(vis_path):
            target = vi + offset
            if target < 0:
                continue
            while ir_cur is None or ir_cur[0] < target:
                ir_cur = next(ir_iter, None)
                if ir_cur is None:
                    return
            if kept % every == 0:
                yield FramePair(ir_cur[0], vi, vt, ir_cur[2], vframe)
            kept += 1
        return
    period = 1.0 / ir_info.fps if ir_info.fps > 0 else 0.0
    prev, cur = None, next(ir_iter, None)
    for vi, vt, vframe in read_frames(vis_path):
        target = vt + offset * period
        while cur is not None and cur[1] < target:
            prev, cur = cur, next(ir_iter, None)
        cands = [c for c in (prev, cur) if c is not None]
        if cur is None and (prev is None or target - prev[1] > period):
            return  # the infrared stream ended before this visible frame
        best = min(cands, key=lambda c: abs(c[1] - target))
        if abs(best[1] - target) > period:
            continue  # before the infrared stream starts
        if kept % every == 0:
            yield FramePair(best[0], vi, vt, best[2], vframe)
        kept += 1


def check_video_output(path: str | os.PathLike, sources=(), overwrite: bool = False) -> Path:
    """Refuse, before any work, an output video that cannot be written or would replace an input.

    Raises:
        ValueError: unknown extension, or the output is one of the inputs.
        FileExistsError: the output exists and ``overwrite`` is false.
    """
    from .io import check_writable_folder, same_file

    out = Path(path)
    if out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise ValueError(f"'{out}': output video extension must be one of {', '.join(VIDEO_EXTENSIONS)}")
    for src in sources:
        if same_file(out, src):
            raise ValueError(f"'{out}': output would replace the input '{src}'; choose another output path")
    check_writable_folder(out.parent)
    if out.exists() and not overwrite:
        raise FileExistsError(f"'{out}': output exists and was not replaced (pass --overwrite to replace it)")
    return out


class VideoWriter:
    """Encode RGB uint8 frames into an open binary file (the caller makes it atomic).

    Args:
        fh: a writable, seekable binary file.
        container_format: FFmpeg muxer name (see :data:`VIDEO_EXTENSIONS`).
        width, height: frame size.
        fps: frame rate of the output.
        codec: ``"h264"`` (libx264, CRF 18, preset veryfast) or ``"mp4v"`` (MPEG-4 part 2).
        threads: encoder threads (0: FFmpeg decides).

    Odd widths or heights cannot be chroma-subsampled: such frames are stored as yuv444p.
    """

    def __init__(self, fh, container_format: str, width: int, height: int, fps: float, codec: str = "h264",
                 threads: int = 0) -> None:
        av = _av()
        if codec not in CODECS:
            raise ValueError(f"--codec must be one of {', '.join(CODECS)}, got '{codec}'")
        self._c = av.open(fh, "w", format=container_format)
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        opts = {"crf": "18", "preset": "veryfast"} if codec == "h264" else {}
        self._s = self._c.add_stream(CODECS[codec], rate=rate, options=opts)
        self._s.width, self._s.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        self._s.pix_fmt = "yuv420p" if even else "yuv444p"
        if codec == "mp4v":
            self._s.bit_rate = 8_000_000
        self._s.thread_count = threads
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._s.encode(frame):
            self._c.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the container."""
        for packet in self._s.encode():
            self._c.mux(packet)
        self._c.close()


def frame_luma(rgb: np.ndarray) -> np.ndarray:
    """A decoded uint8 RGB frame (H, W, 3) -> float32 BT.601 luminance (H, W) in [0, 1]."""
    return as_gray(rgb.astype(np.float32) / 255.0)
