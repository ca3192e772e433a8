"""Cost of the mid-size variants beside the CPU variants: parameters, GFLOPs, latency, memory.

    python benchmarks/mid_variants.py [--threads 2] [--repeat 7] [--out benchmarks/results/mid_variants.md]

Each model is timed in a fresh process (``ivfuse.bench_speed.speed_row``) on a 640x480 pair, untiled;
the timing does not depend on the weights, so the mid variants are timed whether or not they ship any.
Run it on idle cores: another job on the machine inflates every latency.
"""

from __future__ import annotations

import argparse

from ivfuse._files import atomic_write
from ivfuse.bench_speed import speed_markdown, speed_row

PAIRS = (("fusionnet_cpu", "fusionnet_mid"), ("pomai_cpu", "pomai_mid"), ("fgfusion_cpu", "fgfusion_mid"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", default="benchmarks/results/mid_variants.md")
    args = ap.parse_args()
    rows = [speed_row(m, threads=args.threads, repeat=args.repeat) for pair in PAIRS for m in pair]
    text = speed_markdown(rows, 480, 640, args.threads)
    print(text)
    if args.out:
        atomic_write(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
