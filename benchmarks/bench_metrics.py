"""Time the metric suite on one 640x480 triple, single-threaded.

For each convention this scores a synthetic 640x480 (fused, ir, vis) triple with every metric
ivfuse computes (ROI-SSIM with one box included) and prints a table: the time of one
``evaluate`` call for the convention's reference table and for all metrics, the same with a
``FusionEvaluator`` whose source-side work is already done (the cost per extra method when
many methods are compared on one pair), and the time of each metric alone. ``vifb`` is timed on
a colour fused image (scored per RGB channel, three times the work) and on a gray one.

    python benchmarks/bench_metrics.py [--repeat 5] [--size 640x480]

Threads are pinned to one (BLAS/OpenMP environment variables, ``torch.set_num_threads(1)``,
``scipy.fft`` with ``workers=1``); times are the best of ``--repeat`` runs in CPU seconds of
this process (``time.process_time``), which other processes on the machine inflate less than
wall time. CPU time includes the kernel's time for handing out fresh memory pages, so the table
also gives the minor page faults per call (``getrusage``): where glibc has returned the freed
memory of one call to the system, the next call faults it in again, which can add a third to
a call's CPU time (see the Speed section of ``docs/metrics.md``). ``--keep-freed-memory`` first
makes glibc keep freed memory for reuse (:func:`ivfuse._allocator.keep_freed_memory`, what
``ivfuse eval`` and ``ivfuse bench`` do), which removes those faults.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import time

try:
    import resource
except ImportError:  # not on Windows: page faults are then reported as nan
    resource = None

import numpy as np

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # torch is not needed by the metrics
    pass

from ivfuse.metrics import FusionEvaluator, evaluate, list_metrics


def synthetic_triple(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth scene with edges and noise: colour fused and visible (h, w, 3), gray infrared (h, w), uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 90 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0)
    base[h // 4 : h // 2, w // 3 : w // 2] += 70
    ir = np.clip(base + 40 * (np.hypot(x - w / 2, y - h / 2) < h / 6) + rng.normal(0, 8, (h, w)), 0, 255)
    tint = np.array([1.05, 1.0, 0.9])
    vis = np.clip((255 - base)[..., None] * tint + rng.normal(0, 5, (h, w, 3)), 0, 255)
    fused = np.clip(0.5 * ir[..., None] + 0.5 * vis + rng.normal(0, 3, (h, w, 3)), 0, 255)
    return fused.astype(np.uint8), ir.astype(np.uint8), vis.astype(np.uint8)


def best_time(fn, repeat: int) -> float:
    """Best CPU time of ``repeat`` calls, in seconds."""
    return timed(fn, repeat)[0]


def timed(fn, repeat: int) -> tuple[float, float]:
    """Best CPU time of ``repeat`` calls in seconds, and the mean minor page faults per call."""
    best = float("inf")
    faults = _minor_faults()
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best, (_minor_faults() - faults) / repeat


def _minor_faults() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt) if resource is not None else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", default="640x480", help="WxH")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="let glibc keep freed memory (as ivfuse eval does) instead of returning it")
    args = parser.parse_args()
    allocator = "default allocator settings"
    if args.keep_freed_memory:
        from ivfuse._allocator import keep_freed_memory

        allocator = "freed memory kept" if keep_freed_memory() else "freed memory kept: not supported here"
    w, h = (int(v) for v in args.size.lower().split("x"))
    fused, ir, vis = synthetic_triple(h, w)
    roi = [(w // 4, h // 4, w // 2, h // 2)]
    everything = list_metrics()

    cases = [
        ("vifb", "colour", fused),
        ("vifb", "gray", fused[..., 1]),
        ("cddfuse", "colour", fused),
        ("tang", "colour", fused),
    ]
    print(f"metric suite on one {w}x{h} triple, 1 thread, best of {args.repeat} (CPU ms), {allocator}\n")
    header = (
        f"{'convention':10s} {'fused':6s} {'table':>8s} {'all':>8s} {'all, sources cached':>20s}"
        f"   {'page faults per call (table, all, cached)':>42s}"
    )
    print(header)
    print("-" * len(header))
    per_metric = {}
    for convention, kind, f in cases:

        def run(names, f=f, convention=convention):
            return evaluate(f, ir, vis, metrics=names, convention=convention, roi=roi)

        table, table_pf = timed(lambda run=run, c=convention: run(list_metrics(c)), args.repeat)
        full, full_pf = timed(lambda run=run: run(everything), args.repeat)
        evaluator = FusionEvaluator(ir, vis, metrics=everything, convention=convention, roi=roi)
        evaluator(f)
        amortised, amortised_pf = timed(lambda evaluator=evaluator, f=f: evaluator(f), args.repeat)
        print(
            f"{convention:10s} {kind:6s} {table * 1e3:8.1f} {full * 1e3:8.1f} {amortised * 1e3:20.1f}"
            f"   {table_pf:14.0f} {full_pf:13.0f} {amortised_pf:13.0f}"
        )
        per_metric[(convention, kind)] = {m: best_time(lambda run=run, m=m: run([m]), args.repeat) for m in everything}
    print("\neach metric alone (CPU ms, input conversion included)\n")
    cols = list(per_metric)
    print(f"{'metric':9s}" + "".join(f"{c + '/' + k:>15s}" for c, k in cols))
    for m in everything:
        print(f"{m:9s}" + "".join(f"{per_metric[c][m] * 1e3:15.1f}" for c in cols))


if __name__ == "__main__":
    main()
