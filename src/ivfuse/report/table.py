"""The comparison table: methods x metrics, the direction of each metric, ranks and notes.

:class:`ComparisonTable` is what :func:`ivfuse.evaluation.comparison_table`, ``ivfuse bench`` and
the scripts under ``benchmarks/`` build, and what the writers of :mod:`ivfuse.report.writers`
render. It reads like the dict it is saved as (``table["mean"][method][metric]``), so a table
loaded back from a ``summary.json`` or ``report.json`` is the same thing
(:meth:`ComparisonTable.from_dict`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = [
    "RANK_METRICS",
    "ComparisonTable",
    "fmt_rank",
    "fmt_value",
    "json_safe",
    "json_text",
    "mean_ranks",
    "method_n",
    "table_n",
    "top_two",
]

#: The metrics behind the project's quality figure: a method's mean rank over these (1 = best).
RANK_METRICS = ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM")


def mean_ranks(mean: Mapping[str, Mapping[str, float]], higher_is_better: Mapping[str, bool],
               metrics: Sequence[str] = RANK_METRICS) -> dict[str, float]:
    """Each method's rank per metric among all methods of the table (1 = best, ties share the
    average of their places), averaged over the metrics of ``metrics`` the table has.

    A method without a value of a metric is not ranked on it (its mean is over the others); a
    method with none gets NaN.

    >>> mean_ranks({"a": {"EN": 7.0, "SD": 40.0}, "b": {"EN": 6.0, "SD": 40.0}}, {"EN": True, "SD": True})
    {'a': 1.25, 'b': 1.75}
    """
    ranks: dict[str, list[float]] = {name: [] for name in mean}
    for m in metrics:
        if m not in higher_is_better:
            continue
        vals = {name: row[m] for name, row in mean.items() if m in row and not math.isnan(row[m])}
        for name, v in vals.items():
            ahead = sum((u > v) if higher_is_better[m] else (u < v) for u in vals.values())
            tied = sum(u == v for u in vals.values())
            ranks[name].append(ahead + (tied + 1) / 2)
    return {name: (sum(r) / len(r) if r else float("nan")) for name, r in ranks.items()}


def top_two(mean: Mapping[str, Mapping[str, float]], metrics: Sequence[str],
            higher_is_better: Mapping[str, bool]) -> dict[str, dict[str, int | None]]:
    """method -> metric -> 1 (best value), 2 (second best) or None; ties (to 12 decimals) share a mark."""
    rank: dict[str, dict[str, int | None]] = {name: {} for name in mean}
    for m in metrics:
        vals = sorted({round(mean[name][m], 12) for name in mean if not math.isnan(mean[name][m])},
                      reverse=higher_is_better[m])
        for name in mean:
            v = mean[name][m]
            r = None
            if not math.isnan(v) and vals:
                if round(v, 12) == vals[0]:
                    r = 1
                elif len(vals) > 1 and round(v, 12) == vals[1]:
                    r = 2
            rank[name][m] = r
    return rank


@dataclass(eq=False)
class ComparisonTable(Mapping):
    """Methods compared on metrics.

    Attributes:
        metrics: metric names (columns), in order.
        higher_is_better: metric -> its direction.
        methods: method names (rows), in order.
        mean: method -> metric -> mean over the compared images (NaN: no value).
        n: metric -> images compared.
        count: method -> metric -> images behind its mean.
        rank: method -> metric -> 1 (best), 2 (second best) or None.
        mean_rank: method -> mean rank over ``rank_metrics`` (1 = best).
        rank_metrics: the metrics behind ``mean_rank`` when the table has all of them (the writers
            then add a mean-rank column), else empty.
        mean_all, count_all: each method's mean and count over every image it has a value for.
        left_out: metric -> image -> why it was left out of the comparison.
        notes: sentences for the table's foot.

    The table is also a read-only mapping of these names (``table["mean"]``), in this order: the
    dict its JSON holds.
    """

    metrics: list[str] = field(default_factory=list)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    mean: dict[str, dict[str, float]] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)
    count: dict[str, dict[str, int]] = field(default_factory=dict)
    rank: dict[str, dict[str, int | None]] = field(default_factory=dict)
    mean_rank: dict[str, float] = field(default_factory=dict)
    rank_metrics: list[str] = field(default_factory=list)
    mean_all: dict[str, dict[str, float]] = field(default_factory=dict)
    count_all: dict[str, dict[str, int]] = field(default_factory=dict)
    left_out: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # -- the mapping view ------------------------------------------------------------------------
    def __getitem__(self, key: str):
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def to_dict(self) -> dict:
        """The table as a plain dict (what ``summary.json`` holds, NaN still as NaN)."""
        return {k: getattr(self, k) for k in _KEYS}

    @classmethod
    def from_dict(cls, data: Mapping) -> ComparisonTable:
        """A table from its dict (e.g. loaded from a report's JSON); missing parts are empty.

        Without ``metrics`` the columns are those of ``higher_is_better``; a null (None) mean is NaN.
        """
        if isinstance(data, ComparisonTable):
            return data
        table = cls(**{k: data[k] for k in _KEYS if k in data})
        for key in ("mean", "mean_all"):  # JSON holds NaN as null
            rows = getattr(table, key)
            if any(v is None for row in rows.values() for v in row.values()):
                setattr(table, key, {k: {m: _nan(v) for m, v in row.items()} for k, row in rows.items()})
        if any(v is None for v in table.mean_rank.values()):
            table.mean_rank = {k: _nan(v) for k, v in table.mean_rank.items()}
        if "metrics" not in data:
            table.metrics = list(table.higher_is_better)
        return table

    @classmethod
    def from_means(cls, mean: Mapping[str, Mapping[str, float]], metrics: Sequence[str],
                   higher_is_better: Mapping[str, bool] | None = None,
                   count: int | Mapping[str, Mapping[str, int]] = 0, notes: Sequence[str] = (),
                   rank_metrics: Sequence[str] = RANK_METRICS) -> ComparisonTable:
        """A table of given means (method -> metric -> value), best and second best marked.

        Args:
            mean: the values; a missing one is NaN.
            metrics: the columns.
            higher_is_better: metric -> direction (default: :data:`ivfuse.metrics.METRICS`' own).
            count: images behind every value, or method -> metric -> images.
            notes: sentences for the table's foot.
            rank_metrics: the metrics of the mean-rank column, shown when the table has all of them.
        """
        if higher_is_better is None:
            from ..metrics import METRICS

            higher_is_better = {m: METRICS[m].higher_is_better for m in metrics}
        better = {m: bool(higher_is_better[m]) for m in metrics}
        means = {name: {m: float(row.get(m, float("nan"))) for m in metrics} for name, row in mean.items()}
        counts = ({name: {m: int(count) for m in metrics} for name in means} if isinstance(count, int)
                  else {name: {m: int(count[name][m]) for m in metrics} for name in means})
        n = {m: max((c[m] for c in counts.values()), default=0) for m in metrics}
        return cls(list(metrics), better, list(means), means, n, counts, top_two(means, metrics, better),
                   mean_ranks(means, better, rank_metrics),
                   list(rank_metrics) if all(m in better for m in rank_metrics) else [],
                   {k: dict(v) for k, v in means.items()}, {k: dict(v) for k, v in counts.items()},
                   {m: {} for m in metrics}, list(notes))

    # -- questions about the table ---------------------------------------------------------------
    def arrow(self, metric: str) -> str:
        """``↑`` for a metric where higher is better, else ``↓``."""
        return "↑" if self.higher_is_better[metric] else "↓"

    def n_compared(self) -> tuple[int, dict[str, int]]:
        """The table's image count and the metrics compared on fewer images (metric -> n)."""
        ns = self.n or {}
        top = max(ns.values(), default=0)
        return top, {m: k for m, k in ns.items() if k != top}

    def method_n(self, method: str) -> int:
        """The images behind a method's row: its largest per-metric count (0 when nothing was scored)."""
        c = self.count.get(method, {})
        return max(c.values(), default=0) if isinstance(c, dict) else int(c)


_KEYS = tuple(f.name for f in fields(ComparisonTable))


def _nan(v) -> float:
    return float("nan") if v is None else v


def table_n(table: Mapping) -> tuple[int, dict[str, int]]:
    """The table's image count and the metrics compared on fewer images (metric -> n).

    Every method's row carries the first number (0 for a method with nothing scored); a metric in
    the second mapping was compared on fewer images (e.g. ROI-SSIM where some pairs have no ROI).
    """
    return ComparisonTable.from_dict(table).n_compared()


def method_n(table: Mapping, method: str) -> int:
    """The images behind a method's row: its largest per-metric count (0 when nothing was scored)."""
    return ComparisonTable.from_dict(table).method_n(method)


def fmt_value(v: float) -> str:
    """A mean as the tables print it: 4 significant-ish digits by magnitude, ``n/a`` for NaN."""
    if math.isnan(v):
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:.1f}"
    if a >= 100:
        return f"{v:.2f}"
    if a >= 1:
        return f"{v:.3f}"
    return f"{v:.4f}"


def fmt_rank(v: float) -> str:
    """A mean rank with two decimals, ``n/a`` for NaN."""
    return "n/a" if math.isnan(v) else f"{v:.2f}"


def json_safe(obj):
    """``obj`` with NaN and infinite floats as None (JSON has no NaN), tuples as lists, paths as text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return json_safe(obj.item())
    return obj


def json_text(obj) -> str:
    """``obj`` as indented JSON text (NaN as null) with a final newline."""
    return json.dumps(json_safe(obj), indent=2) + "\n"
