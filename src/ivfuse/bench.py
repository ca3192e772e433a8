"""The benchmark report: quality tables, a speed table, comparison grids, bar charts, an HTML page.

``ivfuse bench --data DIR [--data DIR ...] --models a,b,c [--peer NAME=DIR ...] [--peers DIR] -o REPORT``

For every dataset each model fuses every pair (into ``REPORT/fused/<dataset>/<model>/``); peers
are folders of fused images someone else made. Everything is scored with :mod:`ivfuse.metrics`
in the chosen convention. Outputs, per dataset ``<ds>``:

* ``quality_<ds>.{md,csv,json,tex}``: mean of each metric per method, best and second best marked
  (the ``.tex`` a booktabs table for a paper);
* ``grid_<ds>.png``: infrared, visible and each method on a few pairs;
* ``bars_<ds>.png``: one bar chart per metric (needs the ``plot`` extra, matplotlib);

and once: ``speed.{md,csv,json}`` (parameters, GFLOPs at 640x480, median CPU latency per pair
after warm-up, peak memory), ``index.html`` tying them together, and ``report.md``.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .evaluation import (
    MethodScores,
    _atomic_text,
    comparison_table,
    find_fused,
    score_methods,
    table_markdown,
    write_rows_csv,
    write_table,
)
from .io import IMAGE_EXTENSIONS, PairScan, find_pairs, read_array

__all__ = ["Peer", "discover_peers", "speed_row", "run_bench", "comparison_grid"]


@dataclass(frozen=True)
class Peer:
    """Fused images made elsewhere: a name, a folder and the stem template of its files."""

    name: str
    folder: Path
    template: str = "{name}"


def dataset_label(root: Path) -> str:
    """A short name for a dataset folder (``.../test/tno`` -> ``tno``, ``.../MRI_PET`` -> ``MRI_PET``)."""
    name = root.name
    if name.lower() in ("input", "source", "test", "train") and root.parent.name:
        name = root.parent.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def discover_peers(folder: str | os.PathLike, pair_names: Sequence[str]) -> list[Peer]:
    """Find the methods in a folder of published fused images.

    Two layouts are recognised: one subfolder per method (``fused/DenseFuse/01.png``), or one
    flat folder with ``<image>_<method>.<ext>`` files (VIFB's ``fused/carLight_ADF.jpg``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"'{root}': peers folder not found")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if subdirs:
        return [Peer(p.name, p) for p in subdirs]
    methods: set[str] = set()
    names = sorted(pair_names, key=len, reverse=True)
    for f in root.iterdir():
        if f.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        for n in names:
            if f.stem.startswith(n + "_"):
                methods.add(f.stem[len(n) + 1 :])
                break
    return [Peer(m, root, "{name}_" + m) for m in sorted(methods)]


# ----------------------------------------------------------------------------------------------
# Speed
# ----------------------------------------------------------------------------------------------

_WORKER = r"""
import json, resource, statistics, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
from ivfuse.models import create_model, get_model_entry, count_parameters
from ivfuse.models.profile import count_gflops
from ivfuse.infer import run_model
name, h, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
entry = get_model_entry(name)
model = create_model(name, pretrained=entry.trainable and entry.weights_status() == "available")
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0
g = torch.Generator().manual_seed(0)
ir, vis = torch.rand(1, 1, h, w, generator=g), torch.rand(1, 1, h, w, generator=g)
idle = rss("VmRSS:")
times = []
for i in range(int(sys.argv[5]) + int(sys.argv[6])):
    t0 = time.perf_counter()
    run_model(model, ir, vis, device="cpu", tile=None)
    if i >= int(sys.argv[5]):
        times.append(time.perf_counter() - t0)
peak = rss("VmHWM:")
gflops = count_gflops(model, 480, 640)
print(json.dumps({"params": count_parameters(model), "gflops": gflops, "latency_s": statistics.median(times),
                  "peak_mb": peak / 2**20, "peak_over_idle_mb": (peak - idle) / 2**20}))
"""


def speed_row(model: str, height: int = 480, width: int = 640, threads: int = 2, warmup: int = 2,
              repeat: int = 5) -> dict:
    """Measure one model in a fresh process (so peak memory is its own).

    Returns:
        {"model", "params", "gflops" (at 640x480), "latency_s" (median per pair), "peak_mb"
        (peak resident memory of the process), "peak_over_idle_mb" (peak minus the memory before
        the first forward pass)}.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, model, str(height), str(width), str(threads), str(warmup), str(repeat)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"speed measurement of '{model}' failed: {proc.stderr.strip().splitlines()[-1:]}")
    return {"model": model, **json.loads(proc.stdout.strip().splitlines()[-1])}


def speed_markdown(rows: Sequence[dict], height: int, width: int, threads: int) -> str:
    lines = [
        f"### Speed ({width}x{height} pair, CPU, {threads} threads)",
        "",
        "| model | params | GFLOPs (640x480) | median latency (s) | peak memory (MB) | over idle (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['gflops']:.2f} | {r['latency_s']:.3f} | {r['peak_mb']:.0f} | "
            f"{r['peak_over_idle_mb']:.0f} |"
        )
    lines += ["", "GFLOPs count convolutions and matrix products (multiply-add = 2). Latency: median over repeated "
              "runs after warm-up, untiled. Memory: peak resident set of a fresh process."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Pictures
# ----------------------------------------------------------------------------------------------


def _thumb(arr: np.ndarray, height: int):
    from PIL import Image

    a = arr
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257).round().astype(np.uint8)
    im = Image.fromarray(a).convert("RGB")
    w = max(1, round(im.width * height / im.height))
    return im.resize((w, height), Image.BILINEAR)


def comparison_grid(rows: Sequence[Sequence[tuple[str, Path]]], out: Path, thumb_height: int = 150) -> Path:
    """Write a grid image: one row per pair, one labelled column per image (ir, vis, methods...)."""
    from PIL import Image, ImageDraw

    label_h = 16
    cells = [[(label, _thumb(read_array(p), thumb_height)) for label, p in row] for row in rows]
    ncol = max(len(r) for r in cells)
    col_w = [max((r[c][1].width for r in cells if c < len(r)), default=0) for c in range(ncol)]
    grid = Image.new("RGB", (sum(col_w) + 2 * (ncol + 1), len(cells) * (thumb_height + label_h + 2) + 2), "white")
    draw = ImageDraw.Draw(grid)
    y = 2
    for r in cells:
        x = 2
        for c, (label, im) in enumerate(r):
            grid.paste(im, (x, y + label_h))
            draw.text((x + 2, y + 2), label[: max(4, col_w[c] // 7)], fill=(0, 0, 0))
            x += col_w[c] + 2
        y += thumb_height + label_h + 2
    from .io import write_image

    write_image(out, np.asarray(grid))
    return out


def bar_charts(table: dict, out: Path, title: str) -> Path | None:
    """One bar per method for each metric (matplotlib, the ``plot`` extra); None if unavailable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ms = table["metrics"]
    methods = table["methods"]
    ncols = 4
    nrows = (len(ms) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 0.25 * len(methods) * nrows + 1.5 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, ms):
        vals = [table["mean"][n][m] for n in methods]
        colors = ["#c0392b" if table["rank"][n][m] == 1 else "#2e86c1" if table["rank"][n][m] == 2 else "#aab7b8"
                  for n in methods]
        ax.barh(range(len(methods)), vals, color=colors)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{m} ({'higher' if table['higher_is_better'][m] else 'lower'} is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(ms):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def _html_table(table: dict) -> str:
    head = "".join(f"<th>{html.escape(m)} {'&uarr;' if table['higher_is_better'][m] else '&darr;'}</th>"
                   for m in table["metrics"])
    rows = []
    for n in table["methods"]:
        tds = []
        for m in table["metrics"]:
            v = table["mean"][n][m]
            r = table["rank"][n][m]
            s = "n/a" if v != v else f"{v:.4g}"
            cls = ' class="best"' if r == 1 else ' class="second"' if r == 2 else ""
            tds.append(f"<td{cls}>{s}</td>")
        rows.append(f"<tr><th>{html.escape(n)}</th><td>{table['count'][n]}</td>{''.join(tds)}</tr>")
    return f"<table><tr><th>method</th><th>n</th>{head}</tr>{''.join(rows)}</table>"


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


def run_bench(
    datasets: Sequence[str | os.PathLike],
    models: Sequence[str],
    out_dir: str | os.PathLike,
    peers: Sequence[Peer] = (),
    peers_dirs: Sequence[str | os.PathLike] = (),
    metrics: Sequence[str] | None = None,
    convention: str | None = None,
    grid_pairs: int = 3,
    speed: bool = True,
    threads: int = 2,
    progress: bool = True,
    log=print,
) -> dict:
    """Run the whole benchmark and write the report. Returns a summary dict (also ``report.json``).

    Args:
        datasets: dataset folders (each with infrared/visible subfolders).
        models: registered model names to run.
        out_dir: report folder.
        peers: explicit peers, applied to every dataset where their images are found.
        peers_dirs: folders discovered with :func:`discover_peers`; a method found there is scored
            on a dataset only if it has a fused image for every pair of it.
        metrics, convention: what to score (default: the convention's table).
        grid_pairs: pairs shown in each comparison grid.
        speed: also measure the speed table.
    """
    from .api import fuse_folder
    from .metrics import DEFAULT_CONVENTION, list_metrics

    conv = convention or DEFAULT_CONVENTION
    metric_names = list(metrics) if metrics else list_metrics(conv)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"convention": conv, "metrics": metric_names, "datasets": {}, "speed": []}
    md_parts = [f"# ivfuse benchmark\n\nConvention: `{conv}`.\n"]
    html_parts = []
    for ds in datasets:
        root = Path(ds)
        scan: PairScan = find_pairs(root)
        label = dataset_label(root)
        names = [p.name for p in scan.pairs]
        log(f"[{label}] {len(names)} pairs")
        methods: list[MethodScores] = []
        fused_dirs: dict[str, tuple[Path, str]] = {}
        for model in models:
            dest = out / "fused" / label / model
            res = fuse_folder(root, dest, model, progress=progress)
            if res.failed:
                log(f"[{label}] {model}: {len(res.failed)} pairs failed: {res.failed[:3]}")
            fused_dirs[model] = (dest, "{name}")
        for peer in peers:  # explicit peers: scored wherever they have images (missing ones are reported)
            found = find_fused(peer.folder, names, peer.template)
            if any(v is not None for v in found.values()):
                fused_dirs[peer.name] = (peer.folder, peer.template)
        for pd in peers_dirs:  # discovered peers belong to the dataset they fully cover
            for peer in discover_peers(pd, names):
                found = find_fused(peer.folder, names, peer.template)
                if all(v is not None for v in found.values()):
                    fused_dirs[peer.name] = (peer.folder, peer.template)
        fused_paths = {name: find_fused(folder, names, template) for name, (folder, template) in fused_dirs.items()}
        for ms in score_methods(fused_paths, scan.pairs, metric_names, conv, progress=progress):
            for n, msg in ms.problems:
                log(f"[{label}] {ms.name}/{n}: {msg}")
            methods.append(ms)
            write_rows_csv(ms, out / "per_image" / label / f"{ms.name}.csv", metric_names)
        table = comparison_table(methods, metric_names)
        title = f"{label}: {len(names)} pairs, convention {conv}"
        write_table(table, out, stem=f"quality_{label}", title=title)
        md_parts.append(table_markdown(table, title))
        grid_rows = []
        for pp in scan.pairs[:grid_pairs]:
            row = [("infrared", pp.ir), ("visible", pp.vis)]
            for name, (folder, template) in fused_dirs.items():
                f = find_fused(folder, [pp.name], template)[pp.name]
                if f is not None and name in models:
                    row.append((name, f))
            grid_rows.append(row)
        grid = comparison_grid(grid_rows, out / f"grid_{label}.png") if grid_rows else None
        bars = bar_charts(table, out / f"bars_{label}.png", title)
        summary["datasets"][label] = {"path": str(root), "pairs": len(names), "table": table}
        html_parts.append(f"<h2>{html.escape(title)}</h2>{_html_table(table)}")
        if grid:
            html_parts.append(f'<p><img src="{grid.name}" alt="comparison grid {html.escape(label)}"></p>')
        if bars:
            html_parts.append(f'<p><img src="{bars.name}" alt="metric bars {html.escape(label)}"></p>')
    if speed:
        rows = []
        for model in models:
            log(f"[speed] {model}")
            rows.append(speed_row(model, threads=threads))
        summary["speed"] = rows
        sp = speed_markdown(rows, 480, 640, threads)
        _atomic_text(out / "speed.md", sp)
        _atomic_text(out / "speed.json", json.dumps(rows, indent=2) + "\n")
        _atomic_text(out / "speed.csv", "model,params,gflops,latency_s,peak_mb,peak_over_idle_mb\n" + "".join(
            f"{r['model']},{r['params']},{r['gflops']:.4f},{r['latency_s']:.4f},{r['peak_mb']:.1f},"
            f"{r['peak_over_idle_mb']:.1f}\n" for r in rows))
        md_parts.append(sp)
        html_parts.append("<h2>Speed</h2><pre>" + html.escape(sp) + "</pre>")
    _atomic_text(out / "report.md", "\n".join(md_parts))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>ivfuse benchmark</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f4f4f4}"
        ".best{color:#c0392b;font-weight:bold}.second{color:#2e86c1;font-weight:bold}img{max-width:100%}"
        f"</style></head><body><h1>ivfuse benchmark</h1><p>Convention: {html.escape(conv)}. "
        "<span class='best'>best</span>, <span class='second'>second best</span>.</p>"
        + "".join(html_parts) + "</body></html>\n"
    )
    _atomic_text(out / "index.html", page)
    _atomic_text(out / "report.json", json.dumps(summary, indent=2, default=float).replace("NaN", "null") + "\n")
    return summary
