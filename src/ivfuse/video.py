"""Fuse two camera videos frame by frame, or split them into a dataset folder of frame pairs.

The pipeline has three stages in three threads, so that decoding and encoding overlap with the
network: a reader decodes both streams, pairs their frames (:func:`ivfuse.video_io.pair_frames`),
optionally registers the infrared onto the visible (one transform per clip) and converts each pair
as :func:`ivfuse.io.load_pair` does (infrared to gray, visible to Y + CbCr); the calling thread
runs the model; a writer puts the visible colour back (:func:`ivfuse.io.restore_color`) and
encodes the frame. The output video is written to a temporary file and renamed when complete.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._files import atomic_write
from .infer import run_model, select_device
from .io import load_pair, restore_color, write_image
from .shard import select_shard
from .video_io import VIDEO_EXTENSIONS, VideoWriter, check_video_output, frame_luma, pair_frames, probe

__all__ = ["VideoResult", "ClipsResult", "fuse_video", "fuse_clips", "find_clip_pairs"]

_END = object()


@dataclass
class VideoResult:
    """Outcome of :func:`fuse_video`.

    Attributes:
        output: the fused video (None when only frames were extracted).
        frames_dir: the dataset folder of frame pairs, if one was written.
        frames: pairs processed (= frames in the output video).
        width, height: frame size.
        fps_in: the visible stream's frame rate; ``fps_out`` is the output's (``fps_in / every``).
        seconds: wall time from the first decoded frame to the closed output.
        registered: whether the infrared frames were warped onto the visible grid.
    """

    output: Path | None
    frames_dir: Path | None
    frames: int
    width: int
    height: int
    fps_in: float
    fps_out: float
    seconds: float
    registered: bool = False

    @property
    def processing_fps(self) -> float:
        """Pairs processed per second of wall time (decode + register + fuse + encode)."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class _Registrar:
    """Estimate one infrared-to-visible transform on a clip's first pair, apply it to every frame."""

    def __init__(self, ir_path: Path) -> None:
        from .registration import estimate  # optional module, imported only when registering

        self._estimate, self._reg, self._name = estimate, None, ir_path.stem
        self._path = ir_path

    def __call__(self, ir_rgb: np.ndarray, vis_rgb: np.ndarray) -> np.ndarray:
        ir = frame_luma(ir_rgb)
        if self._reg is None:
            try:
                self._reg = self._estimate(frame_luma(vis_rgb), ir, method="homography", name=self._name)
            except ValueError as exc:
                raise ValueError(f"'{self._path}': registration failed: {exc}") from None
        warped, _valid = self._reg.apply(ir)
        return np.clip(np.asarray(warped, dtype=np.float32), 0.0, 1.0)


def _check_frames_dir(frames_out: Path, sources, overwrite: bool) -> None:
    from .io import check_writable_folder, is_within

    for src in sources:
        if is_within(src, frames_out):
            raise ValueError(f"'{frames_out}': the frames folder would hold the input '{src}'; choose another")
    for sub in ("ir", "vi"):
        d = frames_out / sub
        if d.is_dir() and any(d.iterdir()) and not overwrite:
            raise FileExistsError(f"'{d}': folder has files already and was not touched (pass --overwrite)")
    check_writable_folder(frames_out)


def _reader(pairs, register, out_q: queue.Queue, stop: threading.Event) -> None:
    """Decode, pair, register, convert; put (FramePair, Pair) items, then _END (or the exception)."""
    def put(item) -> bool:
        while not stop.is_set():
            try:
                out_q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for fp in pairs:
            ir = register(fp.ir, fp.vis) if register is not None else fp.ir
            if not put((fp, load_pair(ir, fp.vis, name=f"{fp.vis_index:06d}"))):
                return
        put(_END)
    except BaseException as exc:  # handed to the main thread, which raises it
        put(exc)


def _writer(in_q: queue.Queue, writer: VideoWriter | None, frames_out: Path | None, errors: list) -> None:
    try:
        while True:
            item = in_q.get()
            if item is _END:
                return
            fp, pair, fused = item
            if writer is not None:
                writer.write(_to_uint8(restore_color(fused, pair.chroma)))
            if frames_out is not None:
                name = f"{fp.vis_index:06d}.png"
                write_image(frames_out / "ir" / name, pair.ir[0, 0].numpy())
                write_image(frames_out / "vi" / name, fp.vis)
    except BaseException as exc:
        errors.append(exc)
        while in_q.get() is not _END:  # drain so that the producer never blocks
            pass


def fuse_video(
    ir: str | os.PathLike,
    vis: str | os.PathLike,
    output: str | os.PathLike | None,
    model: str | nn.Module | None = None,
    *,
    offset: int = 0,
    every: int = 1,
    register: str = "off",
    frames_out: str | os.PathLike | None = None,
    backend: str = "auto",
    checkpoint_path: str | os.PathLike | None = None,
    device: str = "auto",
    codec: str = "h264",
    by_time: bool | None = None,
    overwrite: bool = False,
    progress: bool = True,
    queue_size: int = 4,
    workers: int | None = None,
) -> VideoResult:
    """Fuse an infrared and a visible video into one, and/or write their sampled frame pairs.

    Args:
        ir, vis: the two videos (same frame size).
        output: the fused video (.mp4, .mov, .mkv or .avi), or None to only write ``frames_out``.
        model: registry name, ``.onnx`` file (onnxruntime backend) or model instance; default
            :data:`ivfuse.api.DEFAULT_MODEL`.
        offset: visible frame t is paired with infrared frame t + offset (negative: the infrared leads).
        every: keep every ``every``-th pair; the output's frame rate is divided by it.
        register: ``"off"`` or ``"once"`` (one homography per clip from the first pair, applied to all frames;
            needs :mod:`ivfuse.registration`).
        frames_out: folder for the sampled pairs as a dataset (``ir/NNNNNN.png``, ``vi/NNNNNN.png``, NNNNNN the
            visible frame index), readable by ``ivfuse fuse`` and ``ivfuse train``.
        backend: ``"torch"``, ``"onnxruntime"`` or ``"auto"`` (see :func:`ivfuse.export.load_model`).
        codec: ``"h264"`` or ``"mp4v"``.
        by_time: pair by timestamps (None: when the frame rates differ).
        overwrite: replace an existing output video / frames.
        progress: a progress bar on stderr.
        workers: onnxruntime sessions of one thread each that fuse alternate frames (default: the
            ``--threads`` count); the PyTorch backend runs one model on all threads.

    Returns:
        A :class:`VideoResult`.

    Raises:
        FileNotFoundError, ValueError: missing or unreadable video, streams of different sizes, no frames,
            bad options (each names the file or option); nothing is left half-written.
        FileExistsError: the output exists and ``overwrite`` is false.
    """
    from tqdm import tqdm

    if register not in ("off", "once"):
        raise ValueError(f"--register must be 'once' or 'off', got '{register}'")
    if output is None and frames_out is None:
        raise ValueError("give an output video (-o) or a frames folder (--frames-out), or both")
    ir_p, vis_p = Path(ir), Path(vis)
    ir_info, vis_info = probe(ir_p), probe(vis_p)
    out = check_video_output(output, (ir_p, vis_p), overwrite) if output is not None else None
    fdir = Path(frames_out) if frames_out is not None else None
    if fdir is not None:
        _check_frames_dir(fdir, (ir_p, vis_p), overwrite)
    net = None
    if out is not None:
        from .export import load_model

        net = load_model(model, backend=backend, checkpoint_path=checkpoint_path)
    dev = select_device(device)
    registrar = _Registrar(ir_p) if register == "once" else None
    pairs = pair_frames(ir_p, vis_p, offset=offset, every=every, by_time=by_time, same_size=registrar is None)
    expected = max(0, min(vis_info.frames, ir_info.frames - offset) if offset >= 0 else
                   min(vis_info.frames + offset, ir_info.frames))
    expected = -(-expected // every) if vis_info.frames and ir_info.frames else None
    fps_out = vis_info.fps / every
    state = {"frames": 0, "t0": time.perf_counter()}

    def run(fh) -> None:
        writer = VideoWriter(fh, VIDEO_EXTENSIONS[out.suffix.lower()], vis_info.width, vis_info.height, fps_out,
                             codec) if fh is not None else None
        state["frames"] = _pipeline(pairs, registrar, _model_pool(net, workers), dev, writer, fdir, queue_size,
                                    tqdm(total=expected, desc=vis_p.stem, unit="frame", disable=not progress,
                                         dynamic_ncols=True))
        if writer is not None:
            writer.close()
        if state["frames"] == 0:
            raise ValueError(f"'{ir_p}' and '{vis_p}': no frame pairs (offset {offset} leaves none)")

    if out is not None:
        atomic_write(out, run)
    else:
        run(None)
    seconds = time.perf_counter() - state["t0"]
    return VideoResult(out, fdir, state["frames"], vis_info.width, vis_info.height, vis_info.fps, fps_out, seconds,
                       registrar is not None)


def _model_pool(net, workers: int | None) -> list:
    """Models for the compute stage: one, or (onnxruntime) ``workers`` one-thread sessions fed alternate frames.

    Two one-thread sessions on two cores need 0.18-0.19 CPU s a 640x480 ``fusionnet_cpu`` frame against 0.23
    for one two-thread session (``docs/video.md``); PyTorch shares one global thread pool, so it keeps one model.
    """
    from .export import OnnxModel

    if net is None or not isinstance(net, OnnxModel):
        return [net]
    n = max(1, int(workers if workers is not None else torch.get_num_threads()))
    return [net] if n == 1 else [net.clone(threads=1) for _ in range(n)]


def _pipeline(pairs, registrar, nets: list, dev, writer, fdir, queue_size: int, bar) -> int:
    """Run reader -> model(s) -> writer; return the number of pairs processed. Raises what any stage raised.

    With several models, frames are fused concurrently (onnxruntime releases the GIL) and handed to the writer
    in their order.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    in_q: queue.Queue = queue.Queue(maxsize=queue_size)
    out_q: queue.Queue = queue.Queue(maxsize=queue_size)
    idle: queue.Queue = queue.Queue()
    for m in nets:
        idle.put(m)
    stop, errors = threading.Event(), []
    reader = threading.Thread(target=_reader, args=(pairs, registrar, in_q, stop), daemon=True, name="video-reader")
    wthread = threading.Thread(target=_writer, args=(out_q, writer, fdir, errors), daemon=True, name="video-writer")

    def fuse(pair):
        if nets[0] is None:
            return None
        m = idle.get()
        try:
            return run_model(m, pair.ir, pair.vis, device=dev)
        finally:
            idle.put(m)

    reader.start()
    wthread.start()
    n = 0
    pending: deque = deque()
    pool = ThreadPoolExecutor(max_workers=len(nets), thread_name_prefix="video-fuse")

    def hand_on() -> None:
        nonlocal n
        fp, pair, fut = pending.popleft()
        out_q.put((fp, pair, fut.result()))
        n += 1
        bar.update(1)

    try:
        while True:
            item = in_q.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            fp, pair = item
            pending.append((fp, pair, pool.submit(fuse, pair)))
            if len(pending) > len(nets):
                hand_on()
            if errors:
                break
        while pending and not errors:
            hand_on()
    finally:
        stop.set()
        for _, _, fut in pending:
            fut.cancel()
        pool.shutdown(wait=True)
        out_q.put(_END)
        wthread.join()
        bar.close()
    if errors:
        raise errors[0]
    return n


def find_clip_pairs(ir_dir: str | os.PathLike,
                    vis_dir: str | os.PathLike) -> tuple[list[tuple[str, Path, Path]], list[Path]]:
    """Video files of two folders matched by stem: sorted (name, ir, vis) and the files without a partner."""
    files = []
    for d in (Path(ir_dir), Path(vis_dir)):
        if not d.is_dir():
            raise FileNotFoundError(2, "folder not found", str(d))
        files.append({p.stem: p for p in sorted(d.iterdir())
                      if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")})
    ir_f, vis_f = files
    names = sorted(set(ir_f) & set(vis_f))
    unmatched = sorted([ir_f[k] for k in ir_f if k not in vis_f] + [vis_f[k] for k in vis_f if k not in ir_f])
    return [(k, ir_f[k], vis_f[k]) for k in names], unmatched


@dataclass
class ClipsResult:
    """Outcome of :func:`fuse_clips`: a result per fused clip, (clip name, error) per failed one."""

    results: list[VideoResult] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)


def fuse_clips(ir_dir, vis_dir, out_dir: str | os.PathLike | None, *, frames_out: str | os.PathLike | None = None,
               shard: tuple[int, int] | None = None, ext: str = ".mp4", model=None, backend: str = "auto",
               checkpoint_path=None, on_clip: Callable[[str, str | None], None] | None = None,
               **kwargs) -> ClipsResult:
    """Fuse every clip pair of two folders (matched by stem) into ``out_dir/<name><ext>``, going on past failures.

    ``frames_out`` gets one dataset folder per clip (``frames_out/<name>/ir``, ``.../vi``). ``shard`` (I, N)
    takes the sorted clip names ``[I::N]``. The model is loaded once; other arguments as in :func:`fuse_video`.
    """
    clips, unmatched = find_clip_pairs(ir_dir, vis_dir)
    if not clips:
        raise ValueError(f"no video pairs with the same name in '{ir_dir}' and '{vis_dir}'")
    if ext.lower() not in VIDEO_EXTENSIONS:
        raise ValueError(f"--ext must be one of {', '.join(VIDEO_EXTENSIONS)}, got '{ext}'")
    net = None
    if out_dir is not None:
        from .export import load_model

        net = load_model(model, backend=backend, checkpoint_path=checkpoint_path)
    res = ClipsResult(unmatched=unmatched)
    for name, ir, vis in select_shard(clips, shard):
        try:
            r = fuse_video(ir, vis, Path(out_dir) / f"{name}{ext}" if out_dir is not None else None, net,
                           backend="torch",  # the model is loaded (and converted) once, above
                           frames_out=Path(frames_out) / name if frames_out is not None else None, **kwargs)
            res.results.append(r)
            err = None
        except (ValueError, OSError, RuntimeError) as exc:
            err = " ".join(str(exc).split())
            res.failed.append((name, err))
        if on_clip is not None:
            on_clip(name, err)
    return res
