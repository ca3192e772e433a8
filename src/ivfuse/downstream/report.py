"""Tables and the bar chart of a downstream comparison (the per-class layout of PoMAI's Table 4).

Rows are the inputs (visible, infrared, each fused method), columns the classes and the mean over
them (``all``); a cell is the mean over the seeds with the sample standard deviation. Which scores
a table holds is a ``{key: title}`` mapping: :data:`METRICS` for detection (the default),
:data:`SEGMENT_METRICS` for segmentation. Pure Python; the chart needs matplotlib (the ``plot``
extra) and is left out with a note without it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .._files import atomic_write

__all__ = ["METRICS", "SEGMENT_METRICS", "aggregate", "table_markdown", "table_latex", "write_chart", "write_tables"]

#: The metric keys of a run's result, and how the tables name them.
METRICS = {"map50": "mAP@0.5", "map": "mAP@[.5:.95]"}

#: The same for segmentation: IoU per class (its mean is the mIoU) and accuracy per class (recall).
SEGMENT_METRICS = {"iou": "IoU", "acc": "Acc"}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def aggregate(runs: Sequence[dict], inputs: Sequence[str], columns: Sequence[str],
              metrics: Mapping[str, str] = METRICS) -> dict:
    """Mean and standard deviation over the seeds of each input, metric and column.

    Args:
        runs: one dict per (input, seed) with ``input``, ``seed`` and, per key of ``metrics``,
            a ``{column: value}`` dict (NaN where a class has no test boxes).
        inputs: the row order.
        columns: the class names and ``all``.
        metrics: the scores, ``{key: title}`` (default :data:`METRICS`).

    Returns:
        ``{"inputs", "columns", "seeds": {input: [seeds]}, "mean": {metric: {input: {column: v}}},
        "std": ...}``; the std is the sample one (ddof 1), 0 for a single seed.
    """
    table = {"inputs": list(inputs), "columns": list(columns), "seeds": {}, "mean": {}, "std": {}}
    for m in metrics:
        table["mean"][m], table["std"][m] = {}, {}
        for name in inputs:
            mine = [r for r in runs if r["input"] == name]
            table["seeds"][name] = [r["seed"] for r in mine]
            table["mean"][m][name], table["std"][m][name] = {}, {}
            for c in columns:
                mu, sd = _mean_std([r[m].get(c, math.nan) for r in mine])
                table["mean"][m][name][c], table["std"][m][name][c] = mu, sd
    return table


def _best(table: dict, metric: str, column: str) -> float:
    vals = [table["mean"][metric][n][column] for n in table["inputs"]]
    vals = [round(100 * v, 1) for v in vals if not math.isnan(v)]  # as printed: a tie in print is a tie
    if len(vals) < 2 or max(vals) == min(vals):
        return math.nan  # nothing to beat, or all equal: no bold
    return max(vals)


def _cell(table: dict, metric: str, name: str, column: str, bold: tuple[str, str]) -> str:
    mu, sd = table["mean"][metric][name][column], table["std"][metric][name][column]
    if math.isnan(mu):
        return "n/a"
    text = f"{100 * mu:.1f} ± {100 * sd:.1f}"
    return f"{bold[0]}{text}{bold[1]}" if round(100 * mu, 1) == _best(table, metric, column) else text


def table_markdown(table: dict, notes: Sequence[str] = (), metrics: Mapping[str, str] = METRICS) -> str:
    """One Markdown table per metric (mAP@0.5, mAP@[.5:.95] by default), in percent, mean ± std over the seeds;
    best in bold."""
    cols = table["columns"]
    lines = []
    for m, title in metrics.items():
        lines += [f"### {title} (%)", "", "| input | seeds | " + " | ".join(cols) + " |",
                  "|---|---:|" + "---:|" * len(cols)]
        for n in table["inputs"]:
            cells = [_cell(table, m, n, c, ("**", "**")) for c in cols]
            lines.append(f"| {n} | {len(table['seeds'][n])} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Mean ± sample standard deviation over the seeds, in percent; "
                 "**best** per column (none where all are equal).")
    lines += [f"Note: {t}" for t in notes]
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(ch, ch) for ch in text)


def table_latex(table: dict, caption: str | None = None, metrics: Mapping[str, str] = METRICS) -> str:
    """LaTeX (booktabs): the first metric (mAP@0.5) per class and overall, then the second (mAP@[.5:.95]) overall;
    best in bold."""
    cols = table["columns"]
    (m1, t1), (m2, t2) = list(metrics.items())[:2]
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + _tex(caption) + "}")
    lines += [r"\begin{tabular}{l" + "r" * (len(cols) + 1) + "}", r"\toprule",
              r" & \multicolumn{" + str(len(cols)) + r"}{c}{" + _tex(t1) + r" (\%)} & " + _tex(t2) + r" (\%) \\",
              " & ".join(["Input"] + [_tex(c) for c in cols] + [_tex(cols[-1])]) + r" \\", r"\midrule"]
    for n in table["inputs"]:
        cells = [_cell(table, m1, n, c, (r"\textbf{", "}")) for c in cols]
        cells.append(_cell(table, m2, n, cols[-1], (r"\textbf{", "}")))
        lines.append(" & ".join([_tex(n)] + [c.replace("±", r"$\pm$") for c in cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_tables(table: dict, runs: Sequence[dict], out_dir: str | os.PathLike, stem: str = "detect",
                 notes: Sequence[str] = (), extra: dict | None = None, metrics: Mapping[str, str] = METRICS,
                 caption: str = "Detection mAP per input") -> list[Path]:
    """Write ``<stem>.md``, ``.csv`` (one row per input, metric and column, with the seeds' values),
    ``.json`` (the table, every run and ``extra``) and ``.tex``, atomically; return their paths."""
    from ..evaluation import json_safe

    out = Path(out_dir)
    paths = [atomic_write(out / f"{stem}.md", table_markdown(table, notes, metrics))]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["input", "metric", "class", "mean", "std", "seeds", "values"])
    for n in table["inputs"]:
        mine = [r for r in runs if r["input"] == n]
        for m in metrics:
            for c in table["columns"]:
                vals = " ".join(f"{r[m].get(c, math.nan):.6g}" for r in mine)
                w.writerow([n, m, c, f"{table['mean'][m][n][c]:.6g}", f"{table['std'][m][n][c]:.6g}", len(mine), vals])
    paths.append(atomic_write(out / f"{stem}.csv", buf.getvalue()))
    doc = {"table": table, "runs": list(runs), "notes": list(notes), **(extra or {})}
    paths.append(atomic_write(out / f"{stem}.json", json.dumps(json_safe(doc), indent=2) + "\n"))
    paths.append(atomic_write(out / f"{stem}.tex", table_latex(table, caption, metrics)))
    return paths


def write_chart(table: dict, path: str | os.PathLike, metric: str = "map50",
                metrics: Mapping[str, str] = METRICS) -> str | None:
    """A grouped bar chart of ``metric`` per column (bars: inputs, error bars: std over the seeds).

    Returns:
        None when written, else a one-line note (matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "the bar chart needs matplotlib: pip install 'ivfuse[plot]'"
    cols, names = table["columns"], table["inputs"]
    x = np.arange(len(cols))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 1.4 * len(cols), 3.6), dpi=120)
    for k, n in enumerate(names):
        mu = [100 * table["mean"][metric][n][c] for c in cols]
        sd = [100 * table["std"][metric][n][c] for c in cols]
        ax.bar(x - 0.4 + width * (k + 0.5), np.nan_to_num(mu), width, yerr=np.nan_to_num(sd), capsize=2, label=n)
    ax.set_xticks(x)
    ax.set_xticklabels(cols)
    ax.set_ylabel(f"{metrics[metric]} (%)")
    ax.legend(fontsize=7, ncol=min(len(names), 3))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return None
