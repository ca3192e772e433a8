"""``ivfuse analyze``: modality statistics of a dataset (see :mod:`ivfuse.analysis`).

``ivfuse analyze DATASET -o OUT [--clusters K] [--cluster-on js|all] [--seed N]`` writes into OUT:

* ``analysis_pairs.csv``: one row per pair, the four measures of each modality, the JS divergence
  and the cluster;
* ``analysis_summary.md``: the statistic P per measure, the clusters, the pairs that were skipped;
* ``analysis_p.png`` (the P bars, Fig. 1a) and ``analysis_clusters.png`` (JS divergence per pair
  coloured by cluster, Fig. 1b), when matplotlib (the ``plot`` extra) is installed.

Exit codes: 0 every pair was analysed; 1 some pairs were skipped (listed on stderr, the files are
still written) or the input was unusable; 2 bad usage.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

from ._files import atomic_write

__all__ = ["add_parser", "write_report"]

_CSV = "analysis_pairs.csv"
_SUMMARY = "analysis_summary.md"
_P_PNG = "analysis_p.png"
_CLUSTER_PNG = "analysis_clusters.png"
_NAMES = {"GCR": "gradient change rate", "Lap": "Laplacian variance", "H": "entropy (bits)", "L1": "L1 norm"}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="modality statistics of a dataset: P bars per measure, JS divergence clusters (PoMAI Fig. 1)",
        description="For every infrared/visible pair: gradient change rate, Laplacian variance, entropy and L1 norm "
        "of each image; the share of pairs where infrared exceeds visible (and the reverse) per measure; the "
        "Jensen-Shannon divergence of the two intensity histograms, and K-Means clusters of the pairs. Writes a "
        "per-pair CSV, a Markdown summary and PNG figures (figures need matplotlib: pip install 'ivfuse[plot]').",
    )
    p.add_argument("dataset", nargs="?", help="dataset folder with infrared/visible subfolders")
    p.add_argument("--ir", help="folder of infrared images (instead of DATASET)")
    p.add_argument("--vis", help="folder of visible images (instead of DATASET)")
    p.add_argument("-o", "--output", required=True, help="folder for the CSV, the summary and the figures")
    p.add_argument("--clusters", type=int, default=3, metavar="K", help="K-Means clusters (default 3)")
    p.add_argument("--cluster-on", choices=("js", "all"), default="js",
                   help="features clustered: the JS divergence (default, as in PoMAI) or JS and the eight measures, "
                        "standardised")
    p.add_argument("--seed", type=int, default=0, help="K-Means seed (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args) -> int:
    from .analysis import analyze_pairs
    from .io import check_writable_folder, find_pairs, is_within

    if args.dataset is None and not (args.ir and args.vis):
        print("ivfuse: error: give a dataset folder or both --ir DIR and --vis DIR", file=sys.stderr)
        return 2
    if args.dataset is not None and (args.ir or args.vis):
        print("ivfuse: error: give either DATASET or --ir/--vis, not both", file=sys.stderr)
        return 2
    if args.clusters < 1:
        raise ValueError(f"--clusters must be at least 1, got {args.clusters}")
    scan = find_pairs(args.dataset, ir_dir=args.ir, vis_dir=args.vis)
    if not scan.pairs:
        raise ValueError(f"no infrared/visible pairs found in '{scan.ir_dir}' and '{scan.vis_dir}'")
    for src in (scan.ir_dir, scan.vis_dir):
        if is_within(args.output, src):
            raise ValueError(f"'{args.output}': output folder is inside the input folder '{src}'; choose another")
    check_writable_folder(args.output)
    result = analyze_pairs(scan.pairs, clusters=args.clusters, cluster_on=args.cluster_on, seed=args.seed,
                           progress=not args.quiet)
    source = args.dataset or f"{args.ir} + {args.vis}"
    written, note = write_report(result, args.output, source)
    print(f"analysed {len(result.pairs)} pairs of {source}")
    for m, (ir_gt, vis_gt) in result.p.items():
        print(f"  {m:4s} infrared > visible {ir_gt:6.1%}   visible > infrared {vis_gt:6.1%}")
    print("wrote " + ", ".join(str(p) for p in written))
    if note:
        print(note)
    if result.skipped:
        print(f"{len(result.skipped)} pairs skipped:", file=sys.stderr)
        for name, why in result.skipped:
            print(f"  {name}: {why}", file=sys.stderr)
        return 1
    return 0


def _csv_text(result) -> str:
    from .analysis import MEASURES

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image"] + [f"{m}_{side}" for side in ("ir", "vis") for m in MEASURES] + ["js", "cluster"])
    for s in result.pairs:
        w.writerow([s.name] + [f"{getattr(s, side)[m]:.8g}" for side in ("ir", "vis") for m in MEASURES]
                   + [f"{s.js:.8g}", s.cluster])
    return buf.getvalue()


def _summary_text(result, source: str, figures: bool) -> str:
    from .analysis import MEASURES

    n = len(result.pairs)
    lines = [f"# Modality analysis of {source}", "", f"{n} pairs analysed"
             + (f", {len(result.skipped)} skipped (unreadable)." if result.skipped else "."), "",
             "## The statistic P", "",
             "| measure | infrared > visible | visible > infrared | mean infrared | mean visible |",
             "|---|---:|---:|---:|---:|"]
    for m in MEASURES:
        a, b = result.p[m]
        mi = sum(s.ir[m] for s in result.pairs) / n
        mv = sum(s.vis[m] for s in result.pairs) / n
        lines.append(f"| {m} ({_NAMES[m]}) | {a:.1%} | {b:.1%} | {mi:.5g} | {mv:.5g} |")
    feats = "the JS divergence" if result.cluster_on == "js" else "the JS divergence and the eight measures"
    lines += ["", "Ties count in neither column.", "", "## Jensen-Shannon divergence clusters", "",
              f"K-Means, K = {result.clusters}, on {feats} (standardised); clusters numbered by mean JS "
              "divergence (natural log, 0 to ln 2 = 0.693).", "",
              "| cluster | pairs | mean JS | min JS | max JS |", "|---:|---:|---:|---:|---:|"]
    for c in result.cluster_summary():
        lines.append(f"| {c['cluster']} | {c['pairs']} | {c['js_mean']:.4f} | {c['js_min']:.4f} | {c['js_max']:.4f} |")
    if figures:
        lines += ["", f"![P per measure]({_P_PNG})", "", f"![JS divergence clusters]({_CLUSTER_PNG})"]
    else:
        lines += ["", "No figures: they need matplotlib (pip install 'ivfuse[plot]')."]
    if result.skipped:
        lines += ["", "## Skipped", ""] + [f"- {name}: {why}" for name, why in result.skipped]
    return "\n".join(lines) + "\n"


def _figures(result, out: Path, source: str) -> list[Path] | None:
    """The P bars and the cluster scatter; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from .analysis import MEASURES

    names = list(MEASURES)
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ir_gt = [100 * result.p[m][0] for m in names]
    vis_gt = [100 * result.p[m][1] for m in names]
    ax.bar([i - 0.2 for i in x], ir_gt, 0.4, label="infrared > visible", color="#c0392b")
    ax.bar([i + 0.2 for i in x], vis_gt, 0.4, label="visible > infrared", color="#2e86c1")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names)
    ax.set_ylim(0, 100)
    ax.set_ylabel("P (% of pairs)")
    ax.set_title(f"P per measure, {len(result.pairs)} pairs of {Path(source).name}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths = []
    try:
        paths.append(atomic_write(out / _P_PNG, lambda fh: fig.savefig(fh, format="png", dpi=80)))
    finally:
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
    for c in range(result.clusters):
        idx = [i for i, s in enumerate(result.pairs) if s.cluster == c]
        ax.scatter(idx, [result.pairs[i].js for i in idx], s=12, color=colours[c % len(colours)],
                   label=f"cluster {c} ({len(idx)})")
    ax.set_xlabel("pair (sorted by name)")
    ax.set_ylabel("JS divergence (nats)")
    ax.set_ylim(0, math.log(2) * 1.02)
    ax.set_title(f"JS divergence of the histograms, K-Means K={result.clusters}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        paths.append(atomic_write(out / _CLUSTER_PNG, lambda fh: fig.savefig(fh, format="png", dpi=80)))
    finally:
        plt.close(fig)
    return paths


def write_report(result, out_dir, source: str) -> tuple[list[Path], str | None]:
    """Write the CSV, the summary and (with matplotlib) the two figures into ``out_dir``, atomically.

    Returns:
        (paths written, a note when the figures could not be drawn, else None).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [atomic_write(out / _CSV, _csv_text(result))]
    figures = _figures(result, out, source)
    written.append(atomic_write(out / _SUMMARY, _summary_text(result, source, figures is not None)))
    note = None
    if figures is None:
        note = "no figures written: they need matplotlib (pip install 'ivfuse[plot]')"
    else:
        written += figures
    return written, note
