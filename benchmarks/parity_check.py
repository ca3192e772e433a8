"""Score every method of the parity data with our metrics and report how far each value is from the reference.

Reads ``../shared/data/parity`` (or ``--data``): VIFB's MATLAB table (``vifb/values.csv``, 13
metrics, ``vifb`` convention, relative tolerance 1e-3) and Tang's table (``tang/values.csv``,
``tang`` convention, 1e-3 and 2e-3 for Qabf; Tang's SD and VIF are not a target, his SF is stored
divided by 255). For each table it prints, per metric, the number of values, how many miss the
tolerance, the median and the largest relative difference, and the worst rows; ``--csv`` writes
every value with its relative difference.

    python benchmarks/parity_check.py [--data ../shared/data/parity] [--worst 5] [--csv out.csv]
    python benchmarks/parity_check.py --table vifb --method YDTR --method SwinFusion
    python benchmarks/parity_check.py --table vifb --reencode 75   # one more JPEG generation first

Images are decoded with Pillow, as ``tests/metrics/test_metric_parity.py`` does. This is a report,
not a test: it exits 0 whatever it finds (1 only when the data is missing).
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from ivfuse.metrics import FusionEvaluator

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "parity"

# VIFB's column -> (our metric, relative tolerance).
VIFB = {
    "Cross_entropy": ("CE", 1e-3), "Entropy": ("EN", 1e-3), "Mutinf": ("MI", 1e-3), "Psnr": ("PSNR", 1e-3),
    "Avg_gradient": ("AG", 1e-3), "Edge_intensity": ("EI", 1e-3), "Qabf": ("Qabf", 1e-3),
    "Variance": ("SD", 1e-3), "Spatial_frequency": ("SF", 1e-3), "Rmse": ("RMSE", 1e-3), "Ssim": ("SSIM", 1e-3),
    "Qcb": ("Qcb", 1e-3), "Qcv": ("Qcv", 1e-3),
}  # fmt: skip
TANG = {
    "EN": ("EN", 1e-3), "MI": ("MI", 1e-3), "AG": ("AG", 1e-3), "CC": ("CC", 1e-3), "SCD": ("SCD", 1e-3),
    "MSE": ("MSE", 1e-3), "PSNR": ("PSNR", 1e-3), "SF": ("SF", 1e-3), "Qabf": ("Qabf", 2e-3),
}  # fmt: skip
TANG_SCALE = {"SF": 255.0}  # Tang's table stores SF / 255


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _reencode(img: np.ndarray, quality: int) -> np.ndarray:
    """The image after one more JPEG generation (Pillow, 4:2:0, ``quality``), decoded again."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return _load(buf)


def _tables(data: Path) -> dict:
    vifb, tang = data / "vifb", data / "tang"
    return {
        "vifb": dict(
            values=vifb / "values.csv",
            columns=VIFB,
            convention="vifb",
            sources=lambda image: (vifb / "input" / "IR" / f"{image}.jpg", vifb / "input" / "VI" / f"{image}.jpg"),
            fused=lambda row: vifb / "fused" / f"{row['image']}_{row['method']}.jpg",
        ),
        "tang": dict(
            values=tang / "values.csv",
            columns=TANG,
            convention="tang",
            sources=lambda image: (tang / "source" / "ir" / f"{image}.png", tang / "source" / "vi" / f"{image}.png"),
            fused=lambda row: tang / "fused" / row["method"] / f"{row['image']}.png",
        ),
    }


def score_table(spec: dict, methods: set[str] | None = None, reencode: int | None = None) -> list[dict]:
    """One record per (row, column): image, method, column, metric, ours, ref, rel, tol.

    ``reencode``: score each fused image after one more JPEG generation at this quality, which
    shows how far a metric moves when the pixels change by JPEG noise.
    """
    with open(spec["values"], newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if not methods or r["method"] in methods]
    by_image = defaultdict(list)
    for row in rows:
        by_image[row["image"]].append(row)
    metrics = [m for m, _ in spec["columns"].values()]
    records = []
    for image, image_rows in by_image.items():
        ir, vis = spec["sources"](image)
        evaluator = FusionEvaluator(_load(ir), _load(vis), metrics=metrics, convention=spec["convention"])
        for row in image_rows:
            fused = _load(spec["fused"](row))
            ours = evaluator(fused if reencode is None else _reencode(fused, reencode))
            for column, (metric, tol) in spec["columns"].items():
                ref = float(row[column]) * (TANG_SCALE.get(column, 1.0) if spec["convention"] == "tang" else 1.0)
                value = float(ours[metric])
                rel = abs(value - ref) / abs(ref) if ref else abs(value - ref)
                records.append(
                    dict(image=image, method=row["method"], column=column, metric=metric, ours=value, ref=ref,
                         rel=rel, tol=tol)
                )  # fmt: skip
    return records


def report(name: str, records: list[dict], worst: int) -> int:
    """Prints the per-metric summary of one table; returns the number of misses."""
    by_metric = defaultdict(list)
    for r in records:
        by_metric[r["metric"]].append(r)
    total = sum(r["rel"] > r["tol"] for r in records)
    print(f"\n== {name}: {len(records)} values, {total} miss ==")
    print(f"{'metric':<6} {'tol':>7} {'n':>5} {'miss':>5} {'median':>9} {'max':>9}  worst")
    for metric, rs in by_metric.items():
        misses = sum(r["rel"] > r["tol"] for r in rs)
        top = max(rs, key=lambda r: r["rel"])
        print(
            f"{metric:<6} {rs[0]['tol']:>7.0e} {len(rs):>5} {misses:>5} "
            f"{statistics.median(r['rel'] for r in rs):>9.2e} "
            f"{top['rel']:>9.2e}  {top['image']}/{top['method']}"
        )
    missed = sorted((r for r in records if r["rel"] > r["tol"]), key=lambda r: -r["rel"])
    if missed:
        per_method = defaultdict(int)
        for r in missed:
            per_method[r["method"]] += 1
        print("misses per method: " + ", ".join(f"{m} {n}" for m, n in sorted(per_method.items(), key=lambda x: -x[1])))
        if worst > 0:
            print(f"worst {min(worst, len(missed))} misses:")
        for r in missed[:worst]:
            print(
                f"  {r['metric']:<5} {r['image']}/{r['method']}: ours {r['ours']:.8g} ref {r['ref']:.8g} "
                f"rel {r['rel']:.2e}"
            )
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the parity folder (default ../shared/data/parity)"
    )
    parser.add_argument("--table", action="append", choices=["vifb", "tang"], help="only this table (repeatable)")
    parser.add_argument("--method", action="append", help="only this method (repeatable)")
    parser.add_argument("--worst", type=int, default=10, help="how many of the worst misses to list per table")
    parser.add_argument(
        "--reencode", type=int, metavar="QUALITY", help="score the fused images after one more JPEG generation"
    )
    parser.add_argument("--csv", type=Path, help="write every value with its relative difference here")
    args = parser.parse_args(argv)

    tables = _tables(args.data)
    names = args.table or list(tables)
    missing = [str(tables[n]["values"]) for n in names if not tables[n]["values"].exists()]
    if missing:
        print("parity data not found: " + ", ".join(missing), file=sys.stderr)
        return 1
    everything = []
    for name in names:
        start = time.perf_counter()
        records = score_table(tables[name], set(args.method) if args.method else None, args.reencode)
        report(name, records, args.worst)
        print(f"({time.perf_counter() - start:.1f} s)")
        everything += [dict(table=name, **r) for r in records]
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(everything[0]))
            writer.writeheader()
            writer.writerows(everything)
    return 0


if __name__ == "__main__":
    sys.exit(main())
