"""``ivfuse bench``: the benchmark report (see :mod:`ivfuse.bench`)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="fuse datasets with several models, score them with peers, write tables, grids, charts and HTML",
    )
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="dataset folder; repeat")
    p.add_argument("--models", required=True, help="comma-separated registered model names")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=DIR",
                   help="folder of fused images made by another method; repeat")
    p.add_argument("--peers", action="append", default=[], metavar="DIR",
                   help="folder of several methods' fused images (one subfolder per method, or <image>_<method> files)")
    p.add_argument("--metrics", default=None, help="comma-separated metrics (default: the convention's table)")
    p.add_argument("--convention", default=None, help="vifb (default), cddfuse or tang")
    p.add_argument("--no-speed", action="store_true", help="skip the speed table")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the speed table")
    p.add_argument("-o", "--output", required=True, help="report folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from ._allocator import keep_freed_memory
    from .bench import Peer, run_bench
    from .metrics.registry import resolve_metric
    from .models import get_model_entry

    keep_freed_memory()  # the scoring reuses freed memory (speed is measured in fresh processes)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        get_model_entry(m)  # fail fast on a typo
    peers = []
    for spec in args.peer:
        name, sep, folder = spec.partition("=")
        if not sep:
            raise ValueError(f"--peer expects NAME=DIR, got '{spec}'")
        peers.append(Peer(name, Path(folder)))
    metrics = [resolve_metric(m.strip()) for m in args.metrics.split(",")] if args.metrics else None
    run_bench(args.data, models, args.output, peers=peers, peers_dirs=args.peers, metrics=metrics,
              convention=args.convention, speed=not args.no_speed, threads=args.threads, progress=not args.quiet)
    print(f"report written to {Path(args.output) / 'index.html'}")
    return 0
