"""Writers of a :class:`~ivfuse.report.table.ComparisonTable`: Markdown, CSV, JSON, LaTeX and HTML.

Each writer takes the table (or its dict) and returns text; :func:`write_table` writes the four
files of ``ivfuse eval`` and ``ivfuse bench`` atomically. :func:`markdown_rows` is the plain pipe
table the other Markdown tables of the project (speed, foreground, problems, benchmark scripts)
are written with.
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._files import atomic_write
from .table import ComparisonTable, fmt_rank, fmt_value, json_text

__all__ = [
    "csv_text",
    "html_page",
    "markdown_rows",
    "table_csv",
    "table_html",
    "table_json",
    "table_latex",
    "table_markdown",
    "write_table",
]


def markdown_rows(head: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> list[str]:
    """Lines of a Markdown pipe table.

    Args:
        head: column headings.
        rows: cell texts, one sequence per row.
        align: one letter per column, ``l`` (``---``) or ``r`` (``---:``); default all ``l``.

    >>> markdown_rows(["a", "b"], [["x", "1"]], "lr")
    ['| a | b |', '|---|---:|', '| x | 1 |']
    """
    align = align or "l" * len(head)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def csv_text(head: Sequence, rows: Sequence[Sequence]) -> str:
    """CSV text as Python's ``csv`` module writes it (``\\r\\n`` line ends, quoting where needed)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    w.writerows(rows)
    return buf.getvalue()


def table_markdown(table: Mapping, title: str | None = None) -> str:
    """Markdown: best value **bold**, second best _italic_; arrows give each metric's direction.

    The ``n`` column counts the images compared; a metric compared on fewer says so in its
    heading (``ROI-SSIM ↑ (n=14)``), and note lines name the images left out and why.
    """
    t = ComparisonTable.from_dict(table)
    _, fewer = t.n_compared()
    ranked = bool(t.rank_metrics)
    head = ["method", "n"] + [f"{m} {t.arrow(m)}" + (f" (n={fewer[m]})" if m in fewer else "") for m in t.metrics]
    head += ["mean rank ↓"] if ranked else []
    rows = []
    for name in t.methods:
        cells = [name, str(t.method_n(name))]
        for m in t.metrics:
            s = fmt_value(t.mean[name][m])
            r = t.rank[name][m]
            cells.append(f"**{s}**" if r == 1 else f"_{s}_" if r == 2 else s)
        if ranked:
            cells.append(fmt_rank(t.mean_rank[name]))
        rows.append(cells)
    lines = [f"### {title}", ""] if title else []
    lines += markdown_rows(head, rows, "ll" + "r" * (len(head) - 2))
    lines += ["", ("Means over the images every method has (n); **best**, _second best_; ↑ higher is better, "
                   "↓ lower is better.")]
    if ranked:
        lines.append(f"Mean rank: each method's place among the {len(t.methods)} methods of this table "
                     f"(1 = best, ties averaged) on {', '.join(t.rank_metrics)}, averaged.")
    lines += [f"Note: {note}" for note in t.notes]
    return "\n".join(lines) + "\n"


def table_csv(table: Mapping) -> str:
    """CSV: ``method, n, <metrics>[, mean rank]`` and an ``n <metric>`` column per metric compared on fewer images."""
    t = ComparisonTable.from_dict(table)
    _, fewer = t.n_compared()
    ranked = bool(t.rank_metrics)
    head = ["method", "n"] + list(t.metrics) + (["mean rank"] if ranked else []) + [f"n {m}" for m in fewer]
    rows = [[name, t.method_n(name)] + [f"{t.mean[name][m]:.6g}" for m in t.metrics]
            + ([f"{t.mean_rank[name]:.4g}"] if ranked else []) + [t.count[name][m] for m in fewer]
            for name in t.methods]
    return csv_text(head, rows)


def table_json(table: Mapping) -> str:
    """The whole table as indented JSON (NaN as null), notes and left-out images included."""
    return json_text(table)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def table_latex(table: Mapping, caption: str | None = None, label: str | None = None) -> str:
    """LaTeX (booktabs) for a paper: best value bold, second best underlined, arrows per metric.

    Needs ``\\usepackage{booktabs}`` in the document. Values are formatted as in the Markdown
    table; a mean that could not be computed prints as ``--``. A metric compared on fewer images
    says so in its heading, and the notes (images left out) follow the table in small type.
    """
    t = ComparisonTable.from_dict(table)
    ms = t.metrics
    _, fewer = t.n_compared()
    ranked = bool(t.rank_metrics)
    arrows = [r"$\uparrow$" if t.higher_is_better[m] else r"$\downarrow$" for m in ms]
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + _latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines += [
        r"\begin{tabular}{l" + "r" * (len(ms) + ranked) + "}",
        r"\toprule",
        " & ".join(["Method"] + [f"{_latex_escape(m)} {a}" + (f" ($n={fewer[m]}$)" if m in fewer else "")
                                 for m, a in zip(ms, arrows)] + ([r"Rank $\downarrow$"] if ranked else [])) + r" \\",
        r"\midrule",
    ]
    for name in t.methods:
        cells = [_latex_escape(name)]
        for m in ms:
            v = t.mean[name][m]
            txt = "--" if math.isnan(v) else fmt_value(v)
            r = t.rank[name][m]
            cells.append(r"\textbf{" + txt + "}" if r == 1 else r"\underline{" + txt + "}" if r == 2 else txt)
        if ranked:
            v = t.mean_rank[name]
            cells.append("--" if math.isnan(v) else f"{v:.2f}")
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.notes:
        lines.append(r"\par\smallskip{\footnotesize " + " ".join(_latex_escape(s) for s in t.notes) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def table_html(table: Mapping) -> str:
    """An HTML ``<table>``: best value ``class="best"``, second best ``class="second"``, then the notes."""
    t = ComparisonTable.from_dict(table)
    _, fewer = t.n_compared()
    head = "".join(f"<th>{html.escape(m)} {'&uarr;' if t.higher_is_better[m] else '&darr;'}"
                   + (f" (n={fewer[m]})" if m in fewer else "") + "</th>" for m in t.metrics)
    rows = []
    for name in t.methods:
        tds = []
        for m in t.metrics:
            v = t.mean[name][m]
            r = t.rank[name][m]
            s = "n/a" if math.isnan(v) else f"{v:.4g}"
            cls = ' class="best"' if r == 1 else ' class="second"' if r == 2 else ""
            tds.append(f"<td{cls}>{s}</td>")
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{t.method_n(name)}</td>{''.join(tds)}</tr>")
    notes = "".join(f"<p class='note'>Note: {html.escape(s)}</p>" for s in t.notes)
    return f"<table><tr><th>method</th><th>n</th>{head}</tr>{''.join(rows)}</table>{notes}"


_PAGE_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f4f4f4}"
    ".best{color:#c0392b;font-weight:bold}.second{color:#2e86c1;font-weight:bold}img{max-width:100%}"
    ".bad{color:#c0392b}.problems td{text-align:left}.note{font-size:12px}"
)


def html_page(title: str, intro: str, parts: Sequence[str]) -> str:
    """A whole HTML page: ``<h1>title</h1>``, the ``intro`` paragraph (HTML), then ``parts`` (HTML)."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            f"{_PAGE_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{intro}</p>"
            + "".join(parts) + "</body></html>\n")


def write_table(table: Mapping, out_dir: str | os.PathLike, stem: str = "summary",
                title: str | None = None) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.csv``, ``<stem>.json`` and ``<stem>.tex`` (atomically); return their paths.

    The CSV has ``method, n, <metrics>`` and, for a metric compared on fewer images, an ``n <metric>``
    column; the JSON is the whole table (NaN as null), notes and left-out images included.
    """
    out = Path(out_dir)
    texts = {"md": table_markdown(table, title), "csv": table_csv(table), "json": table_json(table),
             "tex": table_latex(table, caption=title)}
    return [atomic_write(out / f"{stem}.{ext}", text) for ext, text in texts.items()]
