"""Per-pair cost of ``ivfuse fuse DIR`` on 640x480 pairs, by backend: what a user's folder run spends on a pair.

    python benchmarks/fuse_folder_speed.py [--model fusionnet_cpu] [--pairs 21] [--threads 2]
                                           [--backends torch,auto] [--out benchmarks/results/fuse_folder_speed.json]

For each backend the command runs twice in a fresh process, on a folder of one pair and on a folder of
``--pairs`` pairs (the demo scene, one seed each: gray infrared, colour visible), and the per-pair cost is the
difference of the two wall times over ``pairs - 1``: start-up, model loading and the in-memory ONNX export
cancel out, reading, fusing, colour restoration and writing each pair stay in. The median of ``--repeat``
such measurements is kept, with the 1-minute load average before and after (the figure is only meaningful
on idle cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def make_pairs(root: Path, n: int, size=(480, 640)) -> Path:
    """``n`` demo pairs (``ivfuse.demo.make_demo_pair``, seeds 0..n-1): gray infrared, colour visible."""
    from ivfuse.demo import make_demo_pair

    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ir, vis, _mask = make_demo_pair(*size, seed=i)
        Image.fromarray(ir).save(root / "ir" / f"p{i:03d}.png")
        Image.fromarray(vis).save(root / "vi" / f"p{i:03d}.png")
    return root


def wall(data: Path, out: Path, model: str, backend: str, threads: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    entry = "import sys; from ivfuse.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", entry, "fuse", str(data), "-o", str(out), "--model", model,
           "--backend", backend, "--threads", str(threads), "-q"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fusionnet_cpu")
    ap.add_argument("--pairs", type=int, default=21)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="torch,auto")
    ap.add_argument("--out", default="benchmarks/results/fuse_folder_speed.json")
    args = ap.parse_args()
    if args.pairs < 2:
        ap.error("--pairs must be at least 2")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        many = make_pairs(tmp / "many", args.pairs)
        one = tmp / "one"
        for sub in ("ir", "vi"):
            (one / sub).mkdir(parents=True)
            shutil.copy(many / sub / "p000.png", one / sub / "p000.png")
        for backend in args.backends.split(","):
            load_before = os.getloadavg()[0]
            per_pair = []
            for _ in range(args.repeat):
                t1 = wall(one, tmp / "o1", args.model, backend, args.threads)
                tn = wall(many, tmp / "on", args.model, backend, args.threads)
                per_pair.append((tn - t1) / (args.pairs - 1))
            row = {"model": args.model, "backend": backend, "threads": args.threads, "size": "640x480",
                   "pairs": args.pairs, "per_pair_s": round(statistics.median(per_pair), 4),
                   "all_s": [round(x, 4) for x in per_pair], "load_1min_before": round(load_before, 2),
                   "load_1min_after": round(os.getloadavg()[0], 2)}
            rows.append(row)
            print(f"{backend}: {row['per_pair_s']:.3f} s per pair (runs {row['all_s']}, load "
                  f"{row['load_1min_before']} -> {row['load_1min_after']})")
    import torch

    result = {"torch": torch.__version__, "cores": os.cpu_count(), "rows": rows}
    try:
        import onnxruntime

        result["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        result["onnxruntime"] = None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
