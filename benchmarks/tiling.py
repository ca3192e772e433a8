"""Tiled inference: peak memory on a 3840x2160 pair, and tiled-vs-untiled agreement without seams.

    python benchmarks/tiling.py [--model NAME] [--tile 256] [--overlap 64]

Prints (and writes to benchmarks/results/tiling.json):
- peak resident memory of a fresh process fusing a 3840x2160 pair with automatic tiling;
- on a 1024x768 pair (the M3FD sample from ../shared if present, else the synthetic demo pair
  resized): mean absolute difference between tiled and untiled results (target < 1/255), and
  the seam check: the mean absolute difference on the pixels next to tile borders against the
  mean inside the tiles, and the jump across tile borders in the tiled result against the
  same columns/rows of the untiled result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

_PEAK = r"""
import sys, time, torch
torch.set_num_threads(2)
from ivfuse.api import resolve_model
from ivfuse.infer import run_model
model = resolve_model(sys.argv[1])
g = torch.Generator().manual_seed(0)
ir, vis = torch.rand(1, 1, 2160, 3840, generator=g), torch.rand(1, 1, 2160, 3840, generator=g)
t0 = time.perf_counter()
out = run_model(model, ir, vis, device="cpu", tile=sys.argv[2] if sys.argv[2] == "auto" else int(sys.argv[2]))
dt = time.perf_counter() - t0
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0] * 1024
print(peak, dt, tuple(out.shape))
"""


def _pair_1024():
    from ivfuse.io import load_pair

    sample = SHARED / "data" / "test" / "samples"
    if sample.is_dir():
        from ivfuse.io import find_pairs

        pp = find_pairs(sample).pairs[0]
        return load_pair(pp.ir, pp.vis), str(pp.vis)
    from ivfuse.demo import make_demo_pair

    ir, vis, _ = make_demo_pair(768, 1024)
    return load_pair(ir, vis), "synthetic demo pair"


def main() -> None:
    import ivfuse
    from ivfuse.api import resolve_model
    from ivfuse.infer import run_model, tile_grid

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=ivfuse.DEFAULT_MODEL)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--overlap", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(2)

    proc = subprocess.run([sys.executable, "-c", _PEAK, args.model, "auto"], capture_output=True, text=True, check=True)
    peak, secs, shape = proc.stdout.split(maxsplit=2)
    peak_gb = int(peak) / 2**30

    pair, src = _pair_1024()
    model = resolve_model(args.model)
    full = run_model(model, pair.ir, pair.vis, device="cpu", tile=None)[0, 0].numpy().astype(np.float64)
    tiled = run_model(model, pair.ir, pair.vis, device="cpu", tile=args.tile, tile_overlap=args.overlap)[0, 0]
    tiled = tiled.numpy().astype(np.float64)
    diff = np.abs(tiled - full)
    h, w = full.shape
    border = np.zeros((h, w), bool)
    ys, xs = tile_grid(h, args.tile, args.overlap), tile_grid(w, args.tile, args.overlap)
    cols = sorted({x for x in xs[1:]} | {x + args.tile for x in xs[:-1]})
    rows = sorted({y for y in ys[1:]} | {y + args.tile for y in ys[:-1]})
    for c in cols:
        border[:, max(0, c - 2) : c + 2] = True
    for r in rows:
        border[max(0, r - 2) : r + 2, :] = True

    def jump(img):
        js = [np.abs(img[:, c] - img[:, c - 1]).mean() for c in cols if 0 < c < w]
        js += [np.abs(img[r] - img[r - 1]).mean() for r in rows if 0 < r < h]
        return float(np.mean(js)) if js else 0.0

    result = {
        "model": args.model,
        "peak_memory_gb_3840x2160": round(peak_gb, 3),
        "seconds_3840x2160": round(float(secs), 2),
        "pair_1024x768": src,
        "tile": args.tile,
        "overlap": args.overlap,
        "mae_tiled_vs_untiled": float(diff.mean()),
        "mae_target": 1 / 255,
        "mean_diff_near_tile_borders": float(diff[border].mean()),
        "mean_diff_inside_tiles": float(diff[~border].mean()),
        "jump_across_borders_tiled": jump(tiled),
        "jump_across_borders_untiled": jump(full),
    }
    out = ROOT / "benchmarks" / "results" / "tiling.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result.items():
        print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
