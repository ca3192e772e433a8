"""Comparing methods: the table of means over the images every method has, and what it left out."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..io import PairPaths
from ..report import RANK_METRICS, ComparisonTable, mean_ranks, top_two, write_table
from .roi import RoiSource
from .scoring import MethodScores, Unscored, check_metrics, check_output_dir, score_methods, write_rows_csv

__all__ = ["Comparison", "compare_methods", "comparison_table"]


@dataclass
class Comparison:
    """The methods compared under one convention (:func:`compare_methods`).

    Attributes:
        convention: the convention.
        title: a heading for the table.
        methods: per-method scores.
        table: :func:`comparison_table` of them.
        written: files written (empty without an output folder).
    """

    convention: str
    title: str
    methods: list[MethodScores]
    table: ComparisonTable
    written: list[Path] = field(default_factory=list)

    @property
    def unscored(self) -> list[Unscored]:
        """Everything that could not be scored, method by method."""
        return [u for ms in self.methods for u in ms.unscored(self.table["metrics"])]

    @property
    def complete(self) -> bool:
        """True when every method was scored on every image for every metric."""
        return not self.unscored


def compare_methods(
    fused: Mapping[str, Mapping[str, Path | None]],
    pairs: Sequence[PairPaths],
    conventions: Sequence[str],
    metrics: Sequence[str] | None = None,
    roi: RoiSource | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> list[Comparison]:
    """Score several methods under one or more conventions and (optionally) write the tables.

    Conventions, metric names and the output folder are checked before any image is read.

    Args:
        fused: method name -> (pair name -> fused image path), as for :func:`score_methods`.
        pairs: source pairs.
        conventions: one or more of "vifb", "cddfuse", "tang".
        metrics: metric names for every convention; None: each convention's own table.
            ROI-SSIM is added when ``roi`` is given.
        roi: optional ROI source for ROI-SSIM (:func:`roi_source`).
        out_dir: folder for ``per_image_NAME.csv`` and ``summary.{md,csv,json,tex}``; with several
            conventions each name gets a ``_CONVENTION`` suffix.
        progress: show a progress bar.

    Returns:
        One :class:`Comparison` per convention, in the given order; see
        :attr:`Comparison.unscored` for what could not be scored.

    Raises:
        ValueError: unknown convention or metric, ROI-SSIM without ``roi``.
        PermissionError: ``out_dir`` cannot be written to.
    """
    from ..metrics import list_metrics
    from ..metrics.conventions import check_convention

    # A typo fails here, not on every image; a convention given twice is scored once.
    conventions = list(dict.fromkeys(check_convention(c) for c in conventions))
    chosen = check_metrics(metrics, conventions[0], roi) if conventions else None
    if out_dir is not None:
        check_output_dir(out_dir)
    images = [p.name for p in pairs]
    results = []
    for conv in conventions:
        names = list(chosen) if chosen is not None else list_metrics(conv)
        if roi is not None and "ROI-SSIM" not in names:
            names.append("ROI-SSIM")
        methods = score_methods(fused, pairs, names, conv, roi=roi, progress=progress)
        result = Comparison(conv, f"{len(pairs)} pairs, convention '{conv}'", methods,
                            comparison_table(methods, names, images))
        if out_dir is not None:
            suffix = f"_{conv}" if len(conventions) > 1 else ""
            for ms in methods:
                result.written.append(write_rows_csv(ms, Path(out_dir) / f"per_image_{ms.name}{suffix}.csv", names))
            result.written += write_table(result.table, out_dir, stem=f"summary{suffix}", title=result.title)
        results.append(result)
    return results


_NOTE_IMAGES = 8  # images named in a table note; the rest are counted


def _why_missing(methods: Sequence[MethodScores], metrics: Sequence[str]) -> dict[str, dict[tuple[str, str], str]]:
    """method -> {(image, metric): reason} for every value it lacks among the images it knows of."""
    out: dict[str, dict[tuple[str, str], str]] = {}
    for ms in methods:
        why: dict[tuple[str, str], str] = {}
        for u in ms.unscored(metrics):
            for m in [u.metric] if u.metric else metrics:
                why.setdefault((u.image, m), u.reason)
        out[ms.name] = why
    return out


def _left_out_reason(image: str, metric: str, lacking: Sequence[str], why, n_methods: int) -> str:
    reasons = [(name, why[name].get((image, metric), "not scored")) for name in lacking]
    if len(lacking) == n_methods > 1 and len({r for _, r in reasons}) == 1:
        return f"every method: {reasons[0][1]}"
    return "; ".join(f"{name}: {r}" for name, r in reasons)


def _notes(metrics: Sequence[str], n: Mapping[str, int], left_out: Mapping[str, Mapping[str, str]],
           empty: Mapping[str, list[str]]) -> list[str]:
    """Note lines: which images each metric's comparison left out, and why; methods with nothing."""
    notes = []
    groups: dict[str, list[str]] = {}  # identical left-out lists share one note
    for m in metrics:
        if left_out[m]:
            groups.setdefault(json.dumps([n[m], left_out[m]], sort_keys=True), []).append(m)
    for ms in groups.values():
        lo = left_out[ms[0]]
        items = [f"{image} ({reason})" for image, reason in list(lo.items())[:_NOTE_IMAGES]]
        more = f" and {len(lo) - _NOTE_IMAGES} more" if len(lo) > _NOTE_IMAGES else ""
        which = "" if len(ms) == len(metrics) else ", ".join(ms) + ": "
        k = n[ms[0]]
        notes.append(f"{which}compared on the {k} image{'s' if k != 1 else ''} every method has; left out "
                     f"{len(lo)}: " + ", ".join(items) + more + ".")
    by_metrics: dict[tuple[str, ...], list[str]] = {}
    for name, ms in empty.items():
        if ms:
            by_metrics.setdefault(tuple(ms), []).append(name)
    for ms, names in by_metrics.items():
        what = "any metric" if len(ms) == len(metrics) else ", ".join(ms)
        notes.append(f"{', '.join(names)}: no image could be scored for {what} (n/a, not compared).")
    return notes


def comparison_table(methods: Sequence[MethodScores], metrics: Sequence[str],
                     images: Sequence[str] | None = None) -> ComparisonTable:
    """Each metric's mean per method over the images every method has, best and second best marked.

    For each metric the methods are compared on the images that every method with at least one
    value of it has: an image one method lacks (not scored, or NaN) is left out of every method's
    mean, and ``left_out`` and ``notes`` say which and why. A method with no value at all of a
    metric shows n/a there and does not shrink the others' images.

    Args:
        methods: per-method scores.
        metrics: metric names (columns).
        images: every pair name, so that images no method could score are named too (default:
            the images the methods know of).

    Returns:
        A :class:`ivfuse.report.ComparisonTable`, which reads as the dict its JSON holds:
        {"metrics": [...], "higher_is_better": {metric: bool}, "methods": [...],
         "mean": {method: {metric: value}} (over the compared images),
         "n": {metric: images compared}, "count": {method: {metric: images behind its mean}},
         "rank": {method: {metric: 1 | 2 | None}},
         "mean_rank": {method: mean rank over RANK_METRICS in this table (1 = best)},
         "rank_metrics": RANK_METRICS when the table has all of them (the writers then add
         a mean-rank column), else [],
         "mean_all": {method: {metric: value}}, "count_all": {method: {metric: n}} (each method
         over every image it has a value for), "left_out": {metric: {image: reason}},
         "notes": [sentences for the table's foot]}
    """
    from ..metrics import METRICS

    known: list[str] = list(images) if images is not None else []
    seen = set(known)
    for ms in methods:
        for image in [r["image"] for r in ms.rows] + [p[0] for p in ms.problems]:
            if image not in seen:
                seen.add(image)
                known.append(image)
    why = _why_missing(methods, metrics)
    better = {m: METRICS[m].higher_is_better for m in metrics}
    mean: dict[str, dict[str, float]] = {ms.name: {} for ms in methods}
    count: dict[str, dict[str, int]] = {ms.name: {} for ms in methods}
    mean_all: dict[str, dict[str, float]] = {ms.name: {} for ms in methods}
    count_all: dict[str, dict[str, int]] = {ms.name: {} for ms in methods}
    n: dict[str, int] = {}
    left_out: dict[str, dict[str, str]] = {}
    empty: dict[str, list[str]] = {ms.name: [] for ms in methods}
    for m in metrics:
        vals = {ms.name: ms.values(m) for ms in methods}
        having = [name for name in vals if vals[name]]
        common = [image for image in known if all(image in vals[name] for name in having)] if having else []
        n[m] = len(common)
        left_out[m] = {}
        for image in known:
            if image not in common:
                lacking = [name for name in having if image not in vals[name]] or list(vals)
                left_out[m][image] = _left_out_reason(image, m, lacking, why, len(methods))
        for name, v in vals.items():
            mean_all[name][m] = sum(v.values()) / len(v) if v else float("nan")
            count_all[name][m] = len(v)
            if v and common:
                mean[name][m] = sum(v[image] for image in common) / len(common)
                count[name][m] = len(common)
            else:
                mean[name][m] = float("nan")
                count[name][m] = 0
                if not v:
                    empty[name].append(m)
    return ComparisonTable(
        metrics=list(metrics), higher_is_better=better, methods=[ms.name for ms in methods], mean=mean, n=n,
        count=count, rank=top_two(mean, metrics, better), mean_rank=mean_ranks(mean, better),
        # The quality figure is shown only where the table has all eight metrics behind it.
        rank_metrics=list(RANK_METRICS) if all(m in better for m in RANK_METRICS) else [],
        mean_all=mean_all, count_all=count_all, left_out=left_out, notes=_notes(metrics, n, left_out, empty),
    )
