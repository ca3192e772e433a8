"""``ivfuse bench``: the benchmark report (see :mod:`ivfuse.bench`).

Exit codes: 0 the report is complete; 1 the report was written but something could not be fused,
scored, drawn or timed (listed on stderr and in the report), or an option was unusable (nothing
done); 2 bad usage.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="fuse datasets with several models, score them with peers, write tables, grids, charts and HTML",
    )
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="dataset folder; repeat")
    p.add_argument("--models", required=True, help="comma-separated registered model names")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=FILE",
                   help="safetensors weights for model NAME (one of --models) instead of the shipped ones, e.g. "
                        "a model you trained; repeat")
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


def _name_value(option: str, spec: str, what: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name.strip() or not value:
        raise ValueError(f"{option} expects NAME={what}, got '{spec}'")
    return name.strip(), value


def _cmd_bench(args) -> int:
    from ._allocator import keep_freed_memory
    from .bench import Peer, run_bench

    keep_freed_memory()  # the scoring reuses freed memory (speed is measured in fresh processes)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    peers = [Peer(name, Path(folder)) for name, folder in (_name_value("--peer", s, "DIR") for s in args.peer)]
    checkpoints: dict[str, str] = {}
    for spec in args.checkpoint:
        name, file = _name_value("--checkpoint", spec, "FILE")
        if name in checkpoints:
            raise ValueError(f"--checkpoint given twice for '{name}'")
        checkpoints[name] = file
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics is not None else None
    # run_bench checks every option (models, checkpoints, metrics, folders, output) before any work.
    summary = run_bench(args.data, models, args.output, peers=peers, peers_dirs=args.peers, metrics=metrics,
                        convention=args.convention, speed=not args.no_speed, threads=args.threads,
                        progress=not args.quiet, checkpoints=checkpoints)
    print(f"report written to {Path(args.output) / 'index.html'}")
    problems = summary["problems"]
    if problems:
        n = len(problems)
        print(f"{n} problem{'s' if n != 1 else ''} (also in report.md and index.html):", file=sys.stderr)
        for p in problems:
            where = "/".join(x for x in (p["dataset"], p["pair"]) if x)
            who = " ".join(x for x in (where, p["method"], p["metric"]) if x)
            print(f"  [{p['stage']}] {who}: {p['reason']}", file=sys.stderr)
        return 1
    return 0
