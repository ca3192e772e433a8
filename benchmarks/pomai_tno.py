"""PoMAI (CPU variant) on the TNO test pairs, next to the classical baselines, vifb and cddfuse conventions.

For every method: fuse each pair of ``../shared/data/test/tno`` (infrared + visible luminance), quantise the
result to 8 bits (what a saved PNG holds), score it with :func:`ivfuse.metrics.evaluate` under both conventions
and average over the pairs. For the network also: parameters, GFLOPs at 640x480, wall seconds (median) and
process CPU seconds (all threads summed, less sensitive to a busy machine) per 640x480 pair.

    python benchmarks/pomai_tno.py [--checkpoint run/pomai_cpu.safetensors] [--baselines-json cache.json]
                                   [--json results.json] [--card src/ivfuse/weights/pomai_cpu.json]

``--baselines-json`` caches the baselines' numbers: read when the file exists, written otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ivfuse.infer import run_model
from ivfuse.io import find_pairs, load_pair
from ivfuse.metrics import evaluate
from ivfuse.models import create_model
from ivfuse.models.profile import model_profile
from ivfuse.report import ComparisonTable, table_markdown
from ivfuse.timing import measure_latency

METRICS = ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM")
CONVENTIONS = ("vifb", "cddfuse")
BASELINES = ("average", "max", "laplacian", "dwt", "gff")
TNO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "test" / "tno"


def timing_640x480(model: torch.nn.Module, repeat: int = 5) -> dict[str, float]:
    """Median wall seconds and median process CPU seconds of one forward pass on a 640x480 pair."""
    g = torch.Generator().manual_seed(0)
    ir, vis = torch.rand(1, 1, 480, 640, generator=g), torch.rand(1, 1, 480, 640, generator=g)
    model = model.eval()
    with torch.inference_mode():
        t = measure_latency(lambda: run_model(model, ir, vis, device="cpu"), warmup=1, repeat=repeat)
    return {"wall_s": t.median_s, "cpu_s": t.cpu_median_s}


def score(model: torch.nn.Module, pairs: list) -> dict:
    """Means over ``pairs`` per convention and metric, and the mean wall seconds spent fusing a pair."""
    per_conv: dict[str, list[dict[str, float]]] = {c: [] for c in CONVENTIONS}
    fuse_s = 0.0
    for p in pairs:
        pair = load_pair(p.ir, p.vis)
        t0 = time.perf_counter()
        fused = run_model(model, pair.ir, pair.vis, device="cpu")
        fuse_s += time.perf_counter() - t0
        fused8 = (fused[0, 0].numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
        for conv in CONVENTIONS:
            per_conv[conv].append(evaluate(fused8, pair.ir[0, 0], pair.vis[0, 0], metrics=list(METRICS),
                                           convention=conv))
    means = {c: {m: float(np.nanmean([row[m] for row in rows])) for m in METRICS} for c, rows in per_conv.items()}
    return {"metrics": means, "fuse_seconds_per_pair": fuse_s / max(1, len(pairs))}


def table(results: dict[str, dict], conv: str, pairs: int) -> str:
    """Markdown table of one convention: a row per method, a column per metric, best and second best marked."""
    t = ComparisonTable.from_means({name: res["metrics"][conv] for name, res in results.items()}, METRICS,
                                   count=pairs)
    return table_markdown(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=TNO, help="folder with ir/ and vi/ (default ../shared TNO)")
    ap.add_argument("--model", default="pomai_cpu")
    ap.add_argument("--checkpoint", type=Path, help="safetensors weights instead of the shipped ones")
    ap.add_argument("--stage", help="decode with this stage's path, e.g. stage1 to score a stage-one checkpoint")
    ap.add_argument("--name", help="row name of the network in the tables (default: the model name)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--baselines-only", action="store_true")
    ap.add_argument("--baselines-json", type=Path, help="cache of the baselines' results (read if present)")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--card", type=Path, help="merge params, GFLOPs, timings and TNO metrics into this weight card")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = list(find_pairs(args.data).pairs)
    if not pairs:
        raise SystemExit(f"no pairs under {args.data}")
    results: dict[str, dict] = {}
    out: dict = {"data": str(args.data), "pairs": len(pairs), "threads": args.threads}

    if not args.baselines_only:
        if args.checkpoint:
            net = create_model(args.model, checkpoint_path=args.checkpoint)
        else:
            net = create_model(args.model, pretrained=True)
        if args.stage:
            net.set_stage(args.stage)
        prof = model_profile(net)
        timing = timing_640x480(net)
        out.update(model=args.model, params=prof["params"], gflops_640x480=prof["gflops"],
                   wall_seconds_640x480=round(timing["wall_s"], 4), cpu_seconds_640x480=round(timing["cpu_s"], 4))
        print(f"{args.model}: {prof['params']:,} params, {prof['gflops']:.3f} GFLOPs at 640x480, "
              f"{timing['wall_s']:.3f} s wall / {timing['cpu_s']:.3f} s CPU per 640x480 pair ({args.threads} threads)",
              flush=True)
        results[args.name or args.model] = score(net, pairs)
        print(f"  {args.name or args.model} scored", flush=True)

    if not args.no_baselines:
        cache = args.baselines_json
        if cache is not None and cache.is_file():
            results.update(json.loads(cache.read_text()))
        else:
            base = {}
            for name in BASELINES:
                base[name] = score(create_model(name), pairs)
                print(f"  {name} scored", flush=True)
            if cache is not None:
                cache.write_text(json.dumps(base, indent=2))
            results.update(base)

    out["results"] = results
    for conv in CONVENTIONS:
        print(f"\nTNO ({len(pairs)} pairs), convention {conv}, means:\n{table(results, conv, len(pairs))}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    if args.card and args.model in results and not args.stage:
        card = json.loads(args.card.read_text()) if args.card.is_file() else {}
        card.update(params=out["params"], gflops=out["gflops_640x480"])
        card["metrics"] = {f"tno/{c}/{m}": round(v, 4) for c, row in results[args.model]["metrics"].items()
                           for m, v in row.items()}
        card["cpu_seconds_640x480"] = out["cpu_seconds_640x480"]
        card["wall_seconds_640x480"] = out["wall_seconds_640x480"]
        card["baselines_tno"] = {n: {f"{c}/{m}": round(v, 4) for c, row in r["metrics"].items() for m, v in row.items()}
                                 for n, r in results.items() if n != args.model}
        args.card.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
