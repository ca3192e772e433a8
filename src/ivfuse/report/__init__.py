"""Tables of results and the files they are written to.

* :mod:`ivfuse.report.table`: :class:`ComparisonTable` (methods x metrics, directions, ranks,
  notes), mean ranks, number formats, JSON without NaN;
* :mod:`ivfuse.report.writers`: Markdown, CSV, JSON, LaTeX and HTML of a table, and the four
  files ``ivfuse eval`` and ``ivfuse bench`` write;
* :mod:`ivfuse.report.figures`: comparison grids and bar charts (imported on use: it needs
  Pillow, and matplotlib for the charts).
"""

from __future__ import annotations

from .table import (
    RANK_METRICS,
    ComparisonTable,
    fmt_rank,
    fmt_value,
    json_safe,
    json_text,
    mean_ranks,
    method_n,
    table_n,
    top_two,
)
from .writers import (
    csv_text,
    html_page,
    markdown_rows,
    table_csv,
    table_html,
    table_json,
    table_latex,
    table_markdown,
    write_table,
)

__all__ = [
    "RANK_METRICS",
    "ComparisonTable",
    "csv_text",
    "fmt_rank",
    "fmt_value",
    "html_page",
    "json_safe",
    "json_text",
    "markdown_rows",
    "mean_ranks",
    "method_n",
    "table_csv",
    "table_html",
    "table_json",
    "table_latex",
    "table_markdown",
    "table_n",
    "top_two",
    "write_table",
]
