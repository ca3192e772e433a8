"""FGFusion (CPU variant) on TNO beside the classical baselines, under the vifb and cddfuse conventions.

Fuses the 25 TNO pairs of ``../shared/data/test/tno`` with ``fgfusion_cpu`` (shipped weights, or
``--checkpoint``) and with average / max / laplacian / dwt / gff, rounds each fused image to 8
bits as a saved result would be, scores it with :func:`ivfuse.metrics.evaluate` and prints the
means over the pairs. Also measures the CPU variant's parameters, GFLOPs and seconds per
640x480 pair, and can write all of it into the weight card (``--card``).

    python benchmarks/fgfusion_tno.py [--checkpoint runs/fgfusion_cpu/final.safetensors]
                                      [--json out.json] [--card src/ivfuse/weights/fgfusion_cpu.json]
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
from ivfuse import timing
from ivfuse.models.profile import measure_latency, model_profile
from ivfuse.report import ComparisonTable, table_markdown

METRICS = ["EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM"]
CONVENTIONS = ["vifb", "cddfuse"]
BASELINES = ["average", "max", "laplacian", "dwt", "gff"]
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "test" / "tno"


def _pairs(root: Path):
    scan = find_pairs(root)
    pairs = getattr(scan, "pairs", scan)
    return list(pairs)


def cpu_time_per_pair(model: torch.nn.Module, repeat: int = 3) -> float:
    """Process CPU seconds of one 640x480 forward pass (all threads summed; robust to a busy machine)."""
    ir, vis = torch.rand(1, 1, 480, 640), torch.rand(1, 1, 480, 640)
    model = model.eval()
    with torch.inference_mode():
        return timing.measure_latency(lambda: model(ir, vis), warmup=1, repeat=repeat).cpu_min_s


def score_method(model: torch.nn.Module, pairs, tile=None) -> tuple[dict[str, dict[str, float]], float]:
    """Mean metrics per convention over ``pairs`` and the mean fusing time per pair in seconds."""
    rows: dict[str, list[dict[str, float]]] = {c: [] for c in CONVENTIONS}
    seconds = 0.0
    for p in pairs:
        pair = load_pair(p.ir, p.vis)
        t0 = time.perf_counter()
        fused = run_model(model, pair.ir, pair.vis, device="cpu")
        seconds += time.perf_counter() - t0
        f8 = np.round(fused[0, 0].numpy() * 255).clip(0, 255).astype(np.uint8)
        for conv in CONVENTIONS:
            rows[conv].append(evaluate(f8, pair.ir[0, 0], pair.vis[0, 0], metrics=METRICS, convention=conv))
    means = {c: {m: float(np.mean([r[m] for r in rows[c]])) for m in METRICS} for c in CONVENTIONS}
    return means, seconds / max(len(pairs), 1)


def markdown(results: dict[str, dict], conv: str, pairs: int) -> str:
    """Markdown table of one convention: a row per method, a column per metric, best and second best marked."""
    t = ComparisonTable.from_means({name: r["metrics"][conv] for name, r in results.items()}, METRICS, count=pairs)
    return table_markdown(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default="fgfusion_cpu")
    ap.add_argument("--checkpoint", type=Path, default=None, help="safetensors weights instead of the shipped ones")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    ap.add_argument("--baselines-cache", type=Path, default=None,
                    help="JSON of baseline results: read if it exists, else computed and written")
    ap.add_argument("--card", type=Path, default=None, help="merge params/GFLOPs/latency/metrics into this card")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = _pairs(args.data)
    if not pairs:
        raise SystemExit(f"no pairs found under {args.data}")

    net = create_model(args.model, checkpoint_path=args.checkpoint) if args.checkpoint else create_model(
        args.model, pretrained=True)
    prof = model_profile(net)
    latency = measure_latency(net, 480, 640, warmup=1, repeat=5)
    cpu = cpu_time_per_pair(net)
    print(f"{args.model}: {prof['params']} params, {prof['gflops']:.2f} GFLOPs; 640x480 pair: {latency:.3f} s wall on "
          f"{args.threads} threads (median), {cpu:.3f} s of CPU time", flush=True)

    results: dict[str, dict] = {}
    metrics, sec = score_method(net, pairs)
    results[args.model] = {"metrics": metrics, "seconds_per_pair": sec}
    print(f"  {args.model}: done ({sec:.2f} s/pair)", flush=True)
    if not args.no_baselines:
        cache = args.baselines_cache
        if cache is not None and cache.is_file():
            results.update(json.loads(cache.read_text()))
        else:
            base = {}
            for name in BASELINES:
                metrics, sec = score_method(create_model(name), pairs)
                base[name] = {"metrics": metrics, "seconds_per_pair": sec}
                print(f"  {name}: done ({sec:.2f} s/pair)", flush=True)
            results.update(base)
            if cache is not None:
                cache.write_text(json.dumps(base, indent=2))
    for conv in CONVENTIONS:
        print(f"\nTNO, {len(pairs)} pairs, convention {conv} (means):\n" + markdown(results, conv, len(pairs)))

    out = {"model": args.model, "pairs": len(pairs), "params": prof["params"], "gflops_640x480": prof["gflops"],
           "wall_seconds_640x480": round(latency, 4), "cpu_time_640x480": round(cpu, 4), "threads": args.threads,
           "results": results}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    if args.card:
        card = json.loads(args.card.read_text()) if args.card.is_file() else {}
        card["params"], card["gflops"] = prof["params"], prof["gflops"]
        card["metrics"] = {f"tno/{c}/{m}": round(v, 4) for c, ms in results[args.model]["metrics"].items()
                           for m, v in ms.items()}
        # Same key as the other cards: median wall seconds of one 640x480 forward pass.
        card["metrics"][f"cpu_sec_640x480_{args.threads}threads"] = round(latency, 3)
        card["wall_seconds_640x480"] = round(latency, 4)
        card["cpu_time_640x480"] = round(cpu, 4)
        card["baselines_tno"] = {n: {f"{c}/{m}": round(v, 4) for c, ms in r["metrics"].items() for m, v in ms.items()}
                                 for n, r in results.items() if n != args.model}
        args.card.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
