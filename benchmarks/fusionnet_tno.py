"""FusionNet on TNO: the shipped weights beside the classical baselines, two metric conventions.

For every pair of the test folder the script fuses with each method (network and baselines
alike, through :func:`ivfuse.infer.run_model`), restores colour as ``ivfuse fuse`` does,
quantises to 8 bits as a saved PNG would be, and scores with :func:`ivfuse.metrics.evaluate`
under each convention: EN, SD, SF, AG, MI, VIF, Qabf, SSIM, and ROI-SSIM on pseudo-ROIs (the
training engine's :func:`ivfuse.data.pseudo_labels` boxes of the infrared image; TNO has no box
annotations). It also measures CPU seconds per 640x480 pair (median of 5, 2 threads).

Usage::

    python benchmarks/fusionnet_tno.py [--data ../shared/data/test/tno] [--out runs/fusionnet_cpu/tno]
        [--checkpoint runs/fusionnet_cpu/main/fusionnet_cpu.safetensors]

Writes ``<out>/tno_<convention>.{md,csv,json,tex}`` (means over the pairs, :func:`ivfuse.report.write_table`),
``speed.json`` and ``report.md``, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ivfuse.data import pseudo_labels
from ivfuse.infer import run_model
from ivfuse.io import Pair, find_pairs, load_pair, restore_color
from ivfuse.metrics import evaluate
from ivfuse.models import create_model
from ivfuse.models.profile import measure_latency, model_profile
from ivfuse.report import ComparisonTable, markdown_rows, table_markdown, write_table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "test" / "tno"
METRICS = ["EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM"]
CONVENTIONS = ["vifb", "cddfuse"]
BASELINES = ["average", "max", "laplacian", "dwt", "gff"]


def load_pairs(folder: Path) -> list[tuple[Pair, dict]]:
    """Pairs of a dataset folder with their source paths and pseudo-ROI boxes (N, 4)."""
    scan = find_pairs(folder)
    out = []
    for pp in scan.pairs:
        pair = load_pair(pp.ir, pp.vis, name=pp.name)
        _, boxes = pseudo_labels(pair.ir[0, 0])
        out.append((pair, {"ir": pp.ir, "vis": pp.vis, "boxes": np.asarray(boxes, dtype=np.float64).reshape(-1, 4)}))
    return out


def to_uint8(pair: Pair, fused_y: torch.Tensor) -> np.ndarray:
    """Colour restored around the fused Y and quantised as a saved 8-bit image."""
    arr = restore_color(fused_y, pair.chroma)
    return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def fuse_all(model: torch.nn.Module, pairs: list[tuple[Pair, dict]]) -> list[np.ndarray]:
    """Fused 8-bit images of every pair."""
    return [to_uint8(p, run_model(model, p.ir, p.vis, device="cpu")) for p, _ in pairs]


def score(
    fused: list[np.ndarray], pairs: list[tuple[Pair, dict]], convention: str, metrics=METRICS, boxes=None
) -> dict[str, float]:
    """Means over the pairs of ``metrics`` plus ROI-SSIM (on ``boxes[i]`` or each pair's pseudo-ROIs).

    ROI-SSIM is averaged over the pairs whose ROI is non-empty (it is NaN otherwise).
    """
    sums: dict[str, list[float]] = {}
    for i, (f, (_, info)) in enumerate(zip(fused, pairs)):
        roi = info["boxes"] if boxes is None else boxes[i]
        res = evaluate(f, info["ir"], info["vis"], metrics=list(metrics), convention=convention)
        if len(roi):
            res.update(evaluate(f, info["ir"], info["vis"], metrics=["ROI-SSIM"], convention=convention, roi=roi))
        for k, v in res.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                sums.setdefault(k, []).append(float(v))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return str(v) if isinstance(v, int) else f"{v:.4f}"


def markdown(rows: dict[str, dict[str, float]], columns: list[str], title: str) -> str:
    """A plain Markdown table of any columns (a metric's mean or a count), ``-`` where a row has no value."""
    lines = [f"### {title}", ""] + markdown_rows(["method", *columns],
                                                 [[name, *(_cell(vals.get(c)) for c in columns)]
                                                  for name, vals in rows.items()])
    return "\n".join(lines) + "\n"


def comparison(rows: dict[str, dict[str, float]], columns: list[str], pairs: int, roi_pairs: int) -> ComparisonTable:
    """The methods' means as a comparison table (best and second best marked); ROI-SSIM over the pairs with a ROI."""
    count = {name: {c: roi_pairs if c == "ROI-SSIM" else pairs for c in columns} for name in rows}
    return ComparisonTable.from_means(rows, columns, count=count)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "fusionnet_cpu" / "tno")
    ap.add_argument("--model", default="fusionnet_cpu")
    ap.add_argument("--checkpoint", type=Path, default=None, help="weights to use instead of the shipped ones")
    ap.add_argument("--baselines", default=",".join(BASELINES))
    ap.add_argument("--conventions", default=",".join(CONVENTIONS))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    pairs = load_pairs(args.data)
    n_roi = sum(1 for _, info in pairs if len(info["boxes"]))
    print(f"{len(pairs)} pairs from {args.data}; {n_roi} with pseudo-ROIs", flush=True)
    methods = [args.model] + [b for b in args.baselines.split(",") if b]
    conventions = [c for c in args.conventions.split(",") if c]
    rows: dict[str, dict[str, dict[str, float]]] = {c: {} for c in conventions}
    speed: dict[str, dict[str, float]] = {}
    for name in methods:
        t0 = time.perf_counter()
        if name == args.model and args.checkpoint is not None:
            model = create_model(name, checkpoint_path=args.checkpoint)
        else:
            model = create_model(name, pretrained=True)
        fused = fuse_all(model, pairs)
        speed[name] = {"sec_640x480": measure_latency(model), **model_profile(model)}
        for c in conventions:
            rows[c][name] = score(fused, pairs, c)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)

    columns = [*METRICS, "ROI-SSIM"]
    report = []
    for c in conventions:
        title = f"TNO ({len(pairs)} pairs), convention {c}"
        table = comparison(rows[c], columns, len(pairs), n_roi)
        write_table(table, args.out, stem=f"tno_{c}", title=title)
        report.append(table_markdown(table, title))
    speed_md = [f"### CPU cost at 640x480 ({args.threads} threads)", ""] + markdown_rows(
        ["method", "params", "GFLOPs", "s / pair"],
        [[name, str(int(s["params"])), f"{s['gflops']:.2f}", f"{s['sec_640x480']:.3f}"] for name, s in speed.items()])
    report.append("\n".join(speed_md) + "\n")
    (args.out / "speed.json").write_text(json.dumps(speed, indent=2))
    (args.out / "report.md").write_text("\n".join(report))
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
