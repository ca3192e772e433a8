"""Temporal consistency of a fused video: flow-based warping error, next to the sources' own figure.

For consecutive frames t, t+1 of a stream O (luminance in [0, 1]), with backward flow b (from
t+1 to t) and forward flow f (from t to t+1) estimated on the *visible* stream (OpenCV DIS,
medium preset), frame t is warped onto frame t+1::

    W_t(x) = O_t(x + b(x))                                                         (bilinear)
    M(x)   = [x + b(x) inside the frame] * [|b(x) + f(x + b(x))|^2 <= a (|b(x)|^2 + |f(x + b(x))|^2) + c]
    E_t    = sum_x M(x) |O_{t+1}(x) - W_t(x)| / sum_x M(x)
    E      = mean over t of E_t

M is the forward-backward consistency check of Sundaram et al. (ECCV 2010), a = 0.01 and
c = 0.5 px^2, as used by Ruder et al. (2016) and by Lai et al. (ECCV 2018, "Learning Blind Video
Temporal Consistency", whose E_warp takes the squared L2 norm of RGB differences; ours is the mean
absolute difference of luminance, as the bidirectional warping errors of video-fusion benchmarks
are). The same flow and mask serve the fused, infrared and visible streams, so the three figures
are comparable: a fused video that flickers where neither source does scores above both.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._extras import require

__all__ = ["ALPHA", "BETA", "consistency_mask", "warp", "warping_error", "eval_video"]

#: Forward-backward consistency thresholds (relative, and absolute in px^2).
ALPHA, BETA = 0.01, 0.5


def _cv2():
    return require("cv2", "cv", "the temporal-consistency metric (optical flow)")


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``img`` (H, W[, C]) at x + flow(x), bilinear, zero outside; flow (H, W, 2) in pixels (dx, dy)."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gx, gy = _grid(h, w)
    return cv2.remap(np.ascontiguousarray(img, dtype=np.float32), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def consistency_mask(backward: np.ndarray, forward: np.ndarray, alpha: float = ALPHA, beta: float = BETA) -> np.ndarray:
    """(H, W) bool: pixels of frame t+1 whose backward flow lands inside frame t and is undone by the forward flow.

    Args:
        backward: flow from frame t+1 to frame t, (H, W, 2).
        forward: flow from frame t to frame t+1, (H, W, 2).
    """
    h, w = backward.shape[:2]
    gx, gy = _grid(h, w)
    x, y = gx + backward[..., 0], gy + backward[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    fw = warp(forward, backward)
    diff = ((backward + fw) ** 2).sum(-1)
    bound = alpha * ((backward ** 2).sum(-1) + (fw ** 2).sum(-1)) + beta
    return inside & (diff <= bound)


def warping_error(prev: np.ndarray, nxt: np.ndarray, backward: np.ndarray, mask: np.ndarray) -> float:
    """E_t: mean |nxt - warp(prev, backward)| over ``mask`` (NaN if the mask is empty). Images (H, W) in [0, 1]."""
    if not mask.any():
        return float("nan")
    return float(np.abs(nxt - warp(prev, backward))[mask].mean())


class _Flow:
    def __init__(self) -> None:
        cv2 = _cv2()
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from gray frame a to gray frame b, (H, W, 2): a(x) ~ b(x + flow(x))."""
        to8 = [np.ascontiguousarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)) for x in (a, b)]
        return self._dis.calc(to8[0], to8[1], None)


def eval_video(ir: str | os.PathLike, vis: str | os.PathLike, fused: str | os.PathLike, *, offset: int = 0,
               every: int = 1, sample: int = 10, metrics=None, flow_on: str = "vis", progress: bool = True) -> dict:
    """Temporal consistency and fusion metrics of a fused video against its two sources.

    The fused video's k-th frame is taken as the fusion of the k-th pair that
    :func:`ivfuse.video_io.pair_frames` makes with the same ``offset`` and ``every`` (as
    ``ivfuse fuse-video`` wrote it).

    Args:
        ir, vis, fused: the three videos (one frame size).
        sample: fusion metrics (:func:`ivfuse.metrics.evaluate`) on every ``sample``-th fused frame.
        metrics: metric names for those frames (None: the default convention's table).
        flow_on: ``"vis"`` or ``"ir"``, the stream the optical flow is estimated on.

    Returns:
        A JSON-ready dict: ``warping_error`` {fused, ir, vis} (means over frame transitions, [0, 1]
        intensity units), ``warping_error_per_frame``, ``valid_fraction`` (mean share of pixels
        kept by the mask), ``metrics`` (means over the sampled frames), the settings and counts.

    Raises:
        ValueError: unreadable or empty videos, different frame sizes, a fused video whose frame
            count is not the number of pairs (each names the file).
    """
    from tqdm import tqdm

    from .metrics import evaluate
    from .video_io import frame_luma, pair_frames, probe, read_frames

    if sample < 1:
        raise ValueError(f"--sample must be at least 1, got {sample}")
    if flow_on not in ("vis", "ir"):
        raise ValueError(f"--flow-on must be 'vis' or 'ir', got '{flow_on}'")
    fused_p = Path(fused)
    finfo, vinfo = probe(fused_p), probe(vis)
    if (finfo.width, finfo.height) != (vinfo.width, vinfo.height):
        raise ValueError(f"'{fused_p}' is {finfo.width}x{finfo.height} but the visible video '{vis}' is "
                         f"{vinfo.width}x{vinfo.height}")
    flow = _Flow()
    pairs = pair_frames(ir, vis, offset=offset, every=every)
    frames = read_frames(fused_p)
    per = {"fused": [], "ir": [], "vis": []}
    valid, scores, sampled = [], [], []
    prev = None
    n = 0
    bar = tqdm(total=finfo.frames or None, desc=fused_p.stem, unit="frame", disable=not progress, dynamic_ncols=True)
    try:
        for fp in pairs:
            item = next(frames, None)
            if item is None:
                raise ValueError(f"'{fused_p}': has {n} frames but the sources give more pairs "
                                 f"(offset {offset}, every {every}); pass the settings it was made with")
            cur = {"fused": frame_luma(item[2]), "ir": frame_luma(fp.ir), "vis": frame_luma(fp.vis)}
            if prev is not None:
                back = flow(cur[flow_on], prev[flow_on])
                fwd = flow(prev[flow_on], cur[flow_on])
                mask = consistency_mask(back, fwd)
                valid.append(float(mask.mean()))
                for k in per:
                    per[k].append(warping_error(prev[k], cur[k], back, mask))
            if n % sample == 0:
                scores.append(evaluate(item[2], fp.ir[..., 0], fp.vis, metrics=metrics))
                sampled.append(n)
            prev = cur
            n += 1
            bar.update(1)
        if next(frames, None) is not None:
            raise ValueError(f"'{fused_p}': has more frames than the {n} pairs the sources give "
                             f"(offset {offset}, every {every}); pass the settings it was made with")
    finally:
        bar.close()
    names = list(scores[0]) if scores else []
    mean = {k: float(np.nanmean([s[k] for s in scores])) for k in names}
    return {
        "ir": str(ir), "vis": str(vis), "fused": str(fused_p), "offset": offset, "every": every,
        "frames": n, "size": [finfo.width, finfo.height],
        "flow": f"OpenCV DIS optical flow (medium preset) on the {'visible' if flow_on == 'vis' else 'infrared'} "
                "stream, forward-backward consistency mask",
        "alpha": ALPHA, "beta": BETA,
        "warping_error": {k: float(np.nanmean(v)) if v else float("nan") for k, v in per.items()},
        "valid_fraction": float(np.mean(valid)) if valid else float("nan"),
        "warping_error_per_frame": per,
        "metrics": mean, "metric_frames": len(sampled), "metric_frame_indices": sampled,
    }
