"""fuse-video throughput on the M3SVD clips, decode speed of the two FFmpeg bindings, and eval-video figures.

    python benchmarks/video_speed.py [--threads 2] [--backends onnxruntime,torch] [--eval-sample 30]
                                     [--out benchmarks/results/video.json]

For each clip pair of ../shared/data/video/m3svd and each backend, the default model fuses every
frame (decode, fuse, encode H.264) into a temporary folder; the output is decoded back to check
its frame count and size against the input. Frames per second are wall-clock, from the first
decoded frame to the closed file (model loading and the in-memory ONNX export excluded, listed as
``setup_s``). The 1-minute load average is recorded: the machine is shared, so figures taken
while other jobs ran are slower than the machine's own. Then ``eval_video`` scores the fused
video of the first backend (warping error of fused, infrared, visible; fusion metrics every
``--eval-sample`` frames).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video" / "m3svd"


def _decode_fps(path: Path) -> dict:
    out = {}
    import av

    t = time.perf_counter()
    with av.open(str(path)) as c:
        c.streams.video[0].thread_type = "AUTO"
        n = sum(1 for f in c.decode(video=0) if f.to_ndarray(format="rgb24") is not None)
    out["pyav"] = round(n / (time.perf_counter() - t), 1)
    try:
        import imageio_ffmpeg
        import numpy as np
    except ImportError:
        return out
    t = time.perf_counter()
    gen = imageio_ffmpeg.read_frames(str(path))
    next(gen)
    n = sum(1 for b in gen if np.frombuffer(b, np.uint8).size)
    out["imageio_ffmpeg"] = round(n / (time.perf_counter() - t), 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backends", default="onnxruntime,torch")
    ap.add_argument("--model", default=None)
    ap.add_argument("--eval-sample", type=int, default=30)
    ap.add_argument("--out", default="benchmarks/results/video.json")
    args = ap.parse_args()

    import torch

    from ivfuse import api
    from ivfuse.export import load_model
    from ivfuse.temporal import eval_video
    from ivfuse.video import find_clip_pairs, fuse_video
    from ivfuse.video_io import probe, read_frames

    torch.set_num_threads(args.threads)
    model = args.model or api.DEFAULT_MODEL
    clips, _ = find_clip_pairs(SHARED / "ir", SHARED / "vi")
    rows, evals = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, ir, vis in clips:
            info = probe(vis)
            dec = _decode_fps(vis)
            first = None
            for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
                t = time.perf_counter()
                net = load_model(model, backend=backend)
                setup = time.perf_counter() - t
                out = Path(tmp) / f"{name}_{backend}.mp4"
                load0 = os.getloadavg()[0]
                cpu0 = time.process_time()
                r = fuse_video(ir, vis, out, net, progress=False)
                cpu = time.process_time() - cpu0
                back = [f for _, _, f in read_frames(out)]
                row = {"clip": name, "backend": backend, "model": model, "threads": args.threads,
                       "size": f"{info.width}x{info.height}", "frames_in": info.frames, "frames_out": len(back),
                       "size_out": f"{back[0].shape[1]}x{back[0].shape[0]}", "fps": round(r.processing_fps, 2),
                       "seconds": round(r.seconds, 2), "cpu_s_per_frame": round(cpu / r.frames, 4),
                       "setup_s": round(setup, 2), "decode_fps": dec, "mb_out": round(out.stat().st_size / 2**20, 2),
                       "load_1min_before": round(load0, 2), "load_1min_after": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                first = first or out
            t = time.perf_counter()
            rep = eval_video(ir, vis, first, sample=args.eval_sample, progress=False)
            rep.pop("warping_error_per_frame")
            rep["seconds"] = round(time.perf_counter() - t, 1)
            evals.append(rep)
            print(json.dumps({k: rep[k] for k in ("fused", "warping_error", "valid_fraction", "metrics")}), flush=True)
    result = {"model": model, "cores": os.cpu_count(), "runs": rows, "eval_video": evals}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
