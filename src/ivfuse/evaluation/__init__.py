"""Scoring folders of fused images and comparison tables (``ivfuse eval``, ``ivfuse bench``).

A *method* is a name and a folder of fused images matched to the source pairs by file stem (or by
a template such as ``"{name}_ADF"`` for VIFB-style folders holding every method's outputs). Each
method gets per-image rows; :func:`comparison_table` turns their means into a table in which the
best and second-best value of each metric are marked, written as Markdown, CSV, JSON and LaTeX
(:mod:`ivfuse.report`).

Methods are compared on the images every one of them has: an image one method could not be scored
on (its fused image missing, unreadable or mis-sized, or a metric undefined there, such as ROI-SSIM
where a pair has no ROI) is left out of every method's mean of that metric, and the table says
which images were left out and why. Everything that could not be scored is listed as
:class:`Unscored` records (:attr:`Comparison.unscored`).

The parts: :mod:`.scoring` (the scoring loop), :mod:`.roi` (ROI sources), :mod:`.compare` (the
comparison and its table), :mod:`.foreground` (foreground maps against annotated regions); the
writers live in :mod:`ivfuse.report` and are re-exported here.
"""

from __future__ import annotations

from ..report import RANK_METRICS, json_safe, mean_ranks, method_n, table_latex, table_markdown, table_n, write_table
from .compare import Comparison, compare_methods, comparison_table
from .foreground import (
    FOREGROUND_COLUMNS,
    ForegroundScores,
    foreground_counts,
    foreground_markdown,
    foreground_predictor,
    score_foreground,
    write_foreground,
)
from .roi import RoiSource, roi_source
from .scoring import (
    MethodScores,
    Unscored,
    check_metrics,
    check_output_dir,
    describe_unscored,
    find_fused,
    score_method,
    score_methods,
    write_rows_csv,
)

__all__ = [
    "Comparison",
    "MethodScores",
    "Unscored",
    "check_metrics",
    "check_output_dir",
    "compare_methods",
    "comparison_table",
    "describe_unscored",
    "find_fused",
    "FOREGROUND_COLUMNS",
    "ForegroundScores",
    "foreground_counts",
    "foreground_markdown",
    "foreground_predictor",
    "score_foreground",
    "write_foreground",
    "RANK_METRICS",
    "RoiSource",
    "json_safe",
    "mean_ranks",
    "method_n",
    "roi_source",
    "score_method",
    "score_methods",
    "table_latex",
    "table_markdown",
    "table_n",
    "write_rows_csv",
    "write_table",
]
