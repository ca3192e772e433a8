"""``ivfuse fuse-video`` and ``ivfuse eval-video``: fuse two camera videos; score a fused video's temporal
consistency."""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fuse-video",
        help="fuse an infrared and a visible video frame by frame (or split them into frame pairs)",
        description="Fuse two synchronised videos (--ir A.mp4 --vis B.mp4 -o OUT.mp4), or every clip pair of two "
        "folders matched by name (--ir DIR --vis DIR -o OUT_DIR). --frames-out writes the sampled pairs as a dataset "
        "folder (ir/NNNNNN.png, vi/NNNNNN.png) that `ivfuse fuse` and `ivfuse train` read.",
    )
    p.add_argument("--ir", required=True, help="infrared video, or folder of them")
    p.add_argument("--vis", required=True, help="visible video, or folder of them")
    p.add_argument("-o", "--output", default=None, help="fused video (.mp4 .mov .mkv .avi), or folder (clip folders)")
    p.add_argument("--model", default=None, help="registered model name, or an .onnx file with --backend onnxruntime")
    p.add_argument("--checkpoint", default=None, help="safetensors weights for --model instead of the shipped ones")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                   help="run the network in PyTorch or, exported in memory, in onnxruntime; auto (default): "
                        "onnxruntime when installed and the model exports (2.5x faster for fusionnet_cpu)")
    p.add_argument("--offset", type=int, default=0, help="pair visible frame t with infrared frame t+K (default 0)")
    p.add_argument("--every", type=int, default=1, help="keep every N-th pair (the output rate is divided by N)")
    p.add_argument("--by-time", action="store_true",
                   help="pair by timestamps (the default when the frame rates differ), not by index")
    p.add_argument("--register", default="off", choices=("once", "off"),
                   help="'once': one homography per clip from its first pair, applied to every frame")
    p.add_argument("--frames-out", default=None, help="write the sampled pairs as a dataset folder here")
    p.add_argument("--codec", default="h264", choices=("h264", "mp4v"), help="video codec of the output")
    p.add_argument("--ext", default=".mp4", help="output extension in folder mode (default .mp4)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="clip folders: fuse only the sorted clips [I::N] (default: RANK/WORLD_SIZE under torchrun)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output (never an input)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fuse_video)

    e = sub.add_parser(
        "eval-video",
        help="temporal consistency (flow warping error) and per-frame fusion metrics of a fused video",
        description="Warping error of the fused, infrared and visible streams under optical flow estimated on the "
        "visible stream (occlusions masked by a forward-backward check), and fusion metrics averaged over sampled "
        "frames. See docs/video.md for the formula.",
    )
    e.add_argument("--ir", required=True, help="infrared video")
    e.add_argument("--vis", required=True, help="visible video")
    e.add_argument("--fused", required=True, help="fused video (as written by fuse-video)")
    e.add_argument("-o", "--output", default=None, help="write the figures as JSON here")
    e.add_argument("--offset", type=int, default=0, help="the --offset the fused video was made with")
    e.add_argument("--every", type=int, default=1, help="the --every the fused video was made with")
    e.add_argument("--sample", type=int, default=10, help="fusion metrics on every N-th fused frame (default 10)")
    e.add_argument("--metrics", default=None,
                   help="comma-separated fusion metrics for the sampled frames (default: the VIFB table's)")
    e.add_argument("--flow-on", default="vis", choices=("vis", "ir"), help="stream the optical flow is estimated on")
    e.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_eval_video)


def _cmd_fuse_video(args) -> int:
    from . import video
    from ._allocator import keep_freed_memory
    from .shard import parse_shard

    keep_freed_memory()  # frame after frame: reuse freed memory instead of faulting it in again
    ir, vis = Path(args.ir), Path(args.vis)
    if args.model and args.model.lower().endswith(".onnx"):
        args.backend = "onnxruntime"
    common = dict(offset=args.offset, every=args.every, register=args.register, codec=args.codec,
                  by_time=True if args.by_time else None, device=args.device, overwrite=args.overwrite,
                  progress=not args.quiet)
    if ir.is_dir() or vis.is_dir():
        if not (ir.is_dir() and vis.is_dir()):
            raise ValueError(f"'{ir if vis.is_dir() else vis}': give two video files or two folders of videos")
        if args.output is None and args.frames_out is None:
            raise ValueError("give an output folder (-o) or a frames folder (--frames-out), or both")
        shard = parse_shard(args.shard)
        res = video.fuse_clips(ir, vis, args.output, frames_out=args.frames_out, shard=shard, ext=args.ext,
                               model=args.model, backend=args.backend, checkpoint_path=args.checkpoint, **common)
        for r in res.results:
            _report(r)
        if res.unmatched:
            print(f"{len(res.unmatched)} videos without a partner (not fused):")
            for p in res.unmatched:
                print(f"  {p}")
        if res.failed:
            print(f"{len(res.failed)} clips failed:", file=sys.stderr)
            for name, msg in res.failed:
                print(f"  {name}: {msg}", file=sys.stderr)
            return 1
        return 0
    if args.shard is not None:
        raise ValueError("--shard splits folders of clips; with one clip pair run a single process")
    r = video.fuse_video(ir, vis, args.output, args.model, frames_out=args.frames_out, backend=args.backend,
                         checkpoint_path=args.checkpoint, **common)
    _report(r)
    return 0


def _report(r) -> None:
    what = []
    if r.output is not None:
        what.append(f"wrote {r.output}")
    if r.frames_dir is not None:
        what.append(f"frame pairs in {r.frames_dir}")
    print(f"{', '.join(what)}: {r.frames} frames {r.width}x{r.height} at {r.fps_out:.3g} fps"
          f"{' (registered)' if r.registered else ''}; {r.processing_fps:.2f} frames/s processing")


def _cmd_eval_video(args) -> int:
    from ._files import atomic_write
    from .temporal import eval_video

    out = Path(args.output) if args.output else None
    if out is not None:
        from .io import check_writable_folder

        if out.suffix.lower() != ".json":
            raise ValueError(f"'{out}': -o must be a .json file")
        if out.exists() and not args.overwrite:
            raise FileExistsError(f"'{out}': exists and was not replaced (pass --overwrite)")
        check_writable_folder(out.parent)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    rep = eval_video(args.ir, args.vis, args.fused, offset=args.offset, every=args.every, sample=args.sample,
                     metrics=metrics, flow_on=args.flow_on, progress=not args.quiet)
    we = rep["warping_error"]
    print(f"warping error (mean |O_t+1 - warp(O_t)|, intensities in [0, 1]) over {rep['frames']} frames:")
    for k in ("fused", "ir", "vis"):
        print(f"  {k:6s} {we[k]:.4f}")
    print(f"fusion metrics, mean of {rep['metric_frames']} frames: "
          + ", ".join(f"{k} {v:.4g}" for k, v in rep["metrics"].items()))
    if out is not None:
        atomic_write(out, json.dumps(rep, indent=2) + "\n")
        print(f"wrote {out}")
    return 0
