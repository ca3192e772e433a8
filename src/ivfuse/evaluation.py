"""Scoring folders of fused images and comparison tables (``ivfuse eval``, ``ivfuse bench``).

A *method* is a name and a folder of fused images matched to the source pairs by file stem (or by
a template such as ``"{name}_ADF"`` for VIFB-style folders holding every method's outputs). Each
method gets per-image rows; :func:`comparison_table` turns their means into a table in which the
best and second-best value of each metric are marked, written as Markdown, CSV, JSON and LaTeX.

Methods are compared on the images every one of them has: an image one method could not be scored
on (its fused image missing, unreadable or mis-sized, or a metric undefined there, such as ROI-SSIM
where a pair has no ROI) is left out of every method's mean of that metric, and the table says
which images were left out and why. Everything that could not be scored is listed as
:class:`Unscored` records (:attr:`Comparison.unscored`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ._files import atomic_write
from .io import IMAGE_EXTENSIONS, PairPaths

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Comparison",
    "MethodScores",
    "Unscored",
    "check_output_dir",
    "compare_methods",
    "comparison_table",
    "describe_unscored",
    "find_fused",
    "ForegroundScores",
    "foreground_counts",
    "foreground_markdown",
    "foreground_predictor",
    "score_foreground",
    "write_foreground",
    "RANK_METRICS",
    "json_safe",
    "mean_ranks",
    "roi_source",
    "score_method",
    "score_methods",
    "table_latex",
    "table_markdown",
    "table_n",
    "write_rows_csv",
    "write_table",
]


@dataclass(frozen=True)
class Unscored:
    """Something that could not be scored.

    Attributes:
        method: method name.
        image: pair name.
        reason: why, e.g. "fused image missing" or "empty pseudo-ROI (...)".
        metric: the metric whose value is missing (NaN), or None when no metric of the image could
            be scored (fused image missing, unreadable or mis-sized; source pair unreadable).
    """

    method: str
    image: str
    reason: str
    metric: str | None = None

    def __str__(self) -> str:
        where = f"{self.method}/{self.image}" + (f" {self.metric}" if self.metric else "")
        return f"{where}: {self.reason}"


@dataclass
class MethodScores:
    """Per-image metric values of one method, and what could not be scored.

    Attributes:
        name: method name.
        rows: one dict per scored pair: {"image": name, metric: value, ...}; a value may be NaN
            (the metric is undefined there, see ``nan_reasons``).
        problems: (pair name, message) for pairs whose fused image is missing, unreadable or
            of the wrong size, or whose sources are unreadable: no metric of them was scored.
        nan_reasons: (pair name, metric) -> why that value is NaN, when known.
    """

    name: str
    rows: list[dict] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    nan_reasons: dict[tuple[str, str], str] = field(default_factory=dict)

    def mean(self, metric: str) -> float:
        """Mean of ``metric`` over every image this method has a value for (NaN if none)."""
        vals = list(self.values(metric).values())
        return sum(vals) / len(vals) if vals else float("nan")

    def values(self, metric: str) -> dict[str, float]:
        """Image -> value of ``metric``, for the images where it could be scored (not NaN)."""
        return {r["image"]: r[metric] for r in self.rows if metric in r and not math.isnan(r[metric])}

    def unscored(self, metrics: Sequence[str]) -> list[Unscored]:
        """Every image, and every (image, metric) value among ``metrics``, that could not be scored."""
        out = [Unscored(self.name, image, msg) for image, msg in self.problems]
        for r in self.rows:
            for m in metrics:
                v = r.get(m)
                if v is None:
                    out.append(Unscored(self.name, r["image"], "not computed", m))
                elif math.isnan(v):
                    out.append(Unscored(self.name, r["image"], self.nan_reasons.get(
                        (r["image"], m), f"{m} is undefined (NaN) for this image"), m))
        return out


def describe_unscored(items: Sequence[Unscored]) -> str:
    """A heading counting what could not be scored, then one indented line per item."""
    images = sum(u.metric is None for u in items)
    values = len(items) - images
    parts = [f"{k} {what}{'s' if k != 1 else ''}"
             for k, what in ((images, "fused image"), (values, "metric value")) if k]
    return " and ".join(parts) + " could not be scored:\n" + "\n".join(f"  {u}" for u in items)


def check_output_dir(path: str | os.PathLike) -> Path:
    """Make sure ``path`` is a folder files can be written to (created if needed), before any work.

    Raises:
        PermissionError: it is a file, lies under a file, or cannot be written to.
    """
    from .io import check_writable_folder

    p = Path(path)
    try:
        check_writable_folder(p)
        p.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise
    except OSError as exc:
        raise PermissionError(f"'{p}': output folder is not writable ({exc.strerror or exc})") from None
    return p


def find_fused(folder: str | os.PathLike, names: Iterable[str], template: str = "{name}") -> dict[str, Path | None]:
    """Map each pair name to its fused image in ``folder`` (any image extension), or None.

    Args:
        folder: folder of fused images (searched recursively for names with subfolders).
        names: pair names (relative stems, e.g. "01" or "test/010001").
        template: file stem pattern; ``{name}`` is the pair name, e.g. ``"{name}_ADF"``.
    """
    try:
        template.format(name="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"bad fused file template {template!r}: use {{name}} for the pair name ({exc})") from None
    root = Path(folder)
    out: dict[str, Path | None] = {}
    for name in names:
        stem = template.format(name=name)
        found = None
        for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
            cand = root / f"{stem}{ext}"
            if cand.is_file():
                found = cand
                break
        out[name] = found
    return out


RoiSource = Callable[[PairPaths, "np.ndarray"], object]


def roi_source(spec: str | os.PathLike) -> RoiSource:
    """Where ROI-SSIM's regions come from, as a function ``(pair, infrared array) -> ROI``.

    Args:
        spec: ``"pseudo"``: the salient warm regions of each infrared image
            (:func:`ivfuse.data.pseudo_labels`, the pseudo-ROIs the training engine uses when
            there are no annotations); a folder of YOLO ``.txt`` or Pascal VOC ``.xml`` box files
            or a COCO ``.json`` file (boxes); or a folder of mask images (any non-zero pixel is
            inside). Files are matched to pairs by stem, as the fused images are.

    Returns:
        A function giving (N, 4) boxes ``x0, y0, x1, y1`` in pixels or an (H, W) bool mask. A pair
        without an annotation gets no boxes, so its ROI-SSIM is NaN and it is left out of the
        mean (the per-image CSV shows it).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the folder holds neither box files nor images.
    """
    import numpy as np

    from . import data

    if str(spec) == "pseudo":
        from .io import _as_gray, to_float

        def pseudo(pp: PairPaths, ir: np.ndarray) -> np.ndarray:
            # The infrared as the training engine sees it (float [0, 1], BT.601 gray): the same pseudo-ROIs.
            return data.pseudo_labels(_as_gray(to_float(ir)))[1]

        pseudo.empty_reason = "empty pseudo-ROI (no warm region stands out in the infrared)"  # type: ignore[attr-defined]
        return pseudo
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(
            f"'{path}': ROI path not found (give a box folder, a COCO .json, a mask folder or 'pseudo')"
        )
    is_masks = path.is_dir() and not any(
        q.suffix.lower() in (".txt", ".xml", ".json") for q in path.rglob("*") if q.is_file()
    ) and any(q.suffix.lower() in IMAGE_EXTENSIONS for q in path.iterdir())
    try:
        labels = data.find_label_sources(None, boxes="" if is_masks else str(path), masks=str(path) if is_masks else "")
    except data.DatasetError as exc:
        raise ValueError(f"{exc}; or give a folder of mask images, or 'pseudo'") from exc

    def from_labels(pp: PairPaths, ir: np.ndarray) -> np.ndarray:
        h, w = ir.shape[:2]
        if is_masks:
            mask = data.read_pair_mask(labels, pp.name, w, h)
            return mask if mask is not None else np.zeros((0, 4))  # no mask: no ROI
        return data.read_boxes(labels, pp.name, w, h)[0]

    from_labels.empty_reason = (  # type: ignore[attr-defined]
        "no mask for this pair, or an empty one" if is_masks else "no boxes for this pair")
    return from_labels


def _roi_is_empty(r) -> bool:
    import numpy as np

    a = np.asarray(r)
    return a.size == 0 or (a.ndim == 2 and a.shape[1:] != (4,) and not a.any())


def _nan_reason(metric: str, roi: RoiSource | None, roi_value) -> str:
    if metric == "ROI-SSIM" and roi is not None:
        if _roi_is_empty(roi_value):
            return getattr(roi, "empty_reason", "no ROI for this pair")
        return "the ROI lies outside the region SSIM is averaged over (the border band)"
    return f"{metric} is undefined (NaN) for this image"


def _check_metrics(metrics: Sequence[str] | None, convention: str, roi: RoiSource | None) -> list[str] | None:
    """Canonical metric names and convention, or ``ValueError`` before any image is read."""
    from .metrics.conventions import check_convention
    from .metrics.registry import resolve_metric

    check_convention(convention)
    if metrics is None:
        return None
    names = list(dict.fromkeys(resolve_metric(m) for m in metrics))
    if "ROI-SSIM" in names and roi is None:
        raise ValueError("ROI-SSIM needs regions: give a ROI source (boxes, masks or 'pseudo')")
    return names


def score_method(
    name: str,
    pairs: Sequence[PairPaths],
    fused: Mapping[str, Path | None],
    metrics: Sequence[str] | None = None,
    convention: str | None = None,
    roi: RoiSource | None = None,
    progress: bool = True,
) -> MethodScores:
    """Score one method's fused images against the source pairs (:func:`score_methods` for one).

    A missing, unreadable or mis-sized fused image is recorded in ``problems`` and skipped.

    Args:
        name: method name.
        pairs: source pairs.
        fused: pair name -> fused image path (None when missing), e.g. from :func:`find_fused`.
        metrics: metric names (None: the convention's table).
        convention: "vifb", "cddfuse" or "tang" (None: the default).
        roi: optional function ``(pair, infrared array) -> boxes or mask`` for ROI-SSIM (see
            :func:`roi_source`).
    """
    return score_methods({name: fused}, pairs, metrics, convention, roi, progress)[0]


def score_methods(
    fused: Mapping[str, Mapping[str, Path | None]],
    pairs: Sequence[PairPaths],
    metrics: Sequence[str] | None = None,
    convention: str | None = None,
    roi: RoiSource | None = None,
    progress: bool = True,
) -> list[MethodScores]:
    """Score several methods' fused images against the source pairs, pair by pair.

    Each pair's sources are read once and their metric features computed once
    (:class:`ivfuse.metrics.FusionEvaluator`), then every method's fused image of that pair is
    scored against them: the values are those of :func:`ivfuse.metrics.evaluate`, and each
    further method costs about 40 % less than the first. A missing, unreadable or mis-sized fused
    image is recorded in its method's ``problems``; an unreadable source pair in every method's. A
    metric that is undefined on an image (NaN, e.g. ROI-SSIM of a pair without ROI) keeps its row
    and gets its reason in ``nan_reasons``. Unknown metric or convention names raise ``ValueError``
    before any image is read.

    Args:
        fused: method name -> (pair name -> fused image path, None when missing), in table order.
        pairs, metrics, convention, roi: as for :func:`score_method`.

    Returns:
        One :class:`MethodScores` per method, in the order of ``fused``.
    """
    from tqdm import tqdm

    from .io import read_array
    from .metrics import DEFAULT_CONVENTION, FusionEvaluator

    conv = convention or DEFAULT_CONVENTION
    metrics = _check_metrics(metrics, conv, roi)
    names = list(fused)
    results = {name: MethodScores(name) for name in names}
    desc = f"scoring {names[0]}" if len(names) == 1 else f"scoring {len(names)} methods"
    for pp in tqdm(pairs, desc=desc, unit="pair", disable=not progress, dynamic_ncols=True):
        todo: dict[str, Path] = {}
        for name in names:
            path = fused[name].get(pp.name)
            if path is None:
                results[name].problems.append((pp.name, "fused image missing"))
            else:
                todo[name] = path
        if not todo:
            continue
        try:
            i, v = read_array(pp.ir), read_array(pp.vis)
            if i.shape[:2] != v.shape[:2]:
                raise ValueError(
                    f"size mismatch: infrared {i.shape[1]}x{i.shape[0]}, visible {v.shape[1]}x{v.shape[0]}"
                )
            region = roi(pp, i) if roi else None
            evaluator = FusionEvaluator(i, v, metrics=metrics, convention=conv, roi=region)
        except Exception as exc:  # noqa: BLE001 -- a bad source pair must not end a whole evaluation
            for name in todo:
                results[name].problems.append((pp.name, str(exc)))
            continue
        for name, path in todo.items():
            try:
                f = read_array(path)
                if f.shape[:2] != v.shape[:2]:
                    results[name].problems.append(
                        (pp.name, (f"size mismatch: fused {f.shape[1]}x{f.shape[0]}, "
                                   f"infrared {i.shape[1]}x{i.shape[0]}, visible {v.shape[1]}x{v.shape[0]}"))
                    )
                    continue
                values = evaluator(f)
            except Exception as exc:  # noqa: BLE001 -- one bad image must not end a whole evaluation
                results[name].problems.append((pp.name, str(exc)))
                continue
            results[name].rows.append({"image": pp.name, **values})
            for m, val in values.items():
                if isinstance(val, float) and math.isnan(val):
                    results[name].nan_reasons[(pp.name, m)] = _nan_reason(m, roi, region)
        del evaluator  # its source features (tens of image-sized arrays) go with the pair
    return [results[name] for name in names]


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
    table: dict
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
    from .metrics import list_metrics
    from .metrics.conventions import check_convention

    # A typo fails here, not on every image; a convention given twice is scored once.
    conventions = list(dict.fromkeys(check_convention(c) for c in conventions))
    chosen = _check_metrics(metrics, conventions[0], roi) if conventions else None
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


def comparison_table(methods: Sequence[MethodScores], metrics: Sequence[str],
                     images: Sequence[str] | None = None) -> dict:
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
    from .metrics import METRICS

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
    rank: dict[str, dict[str, int | None]] = {ms.name: {} for ms in methods}
    for m in metrics:
        vals = sorted({round(mean[name][m], 12) for name in mean if not math.isnan(mean[name][m])}, reverse=better[m])
        for name in mean:
            v = mean[name][m]
            r = None
            if not math.isnan(v) and vals:
                if round(v, 12) == vals[0]:
                    r = 1
                elif len(vals) > 1 and round(v, 12) == vals[1]:
                    r = 2
            rank[name][m] = r
    return {
        "metrics": list(metrics),
        "higher_is_better": better,
        "methods": [ms.name for ms in methods],
        "mean": mean,
        "n": n,
        "count": count,
        "rank": rank,
        "mean_rank": mean_ranks(mean, better),
        # The quality figure is shown only where the table has all eight metrics behind it.
        "rank_metrics": list(RANK_METRICS) if all(m in better for m in RANK_METRICS) else [],
        "mean_all": mean_all,
        "count_all": count_all,
        "left_out": left_out,
        "notes": _notes(metrics, n, left_out, empty),
    }


def table_n(table: dict) -> tuple[int, dict[str, int]]:
    """The table's image count and the metrics compared on fewer images (metric -> n).

    Every method's row carries the first number (0 for a method with nothing scored); a metric in
    the second mapping was compared on fewer images (e.g. ROI-SSIM where some pairs have no ROI).
    """
    ns = table.get("n") or {}
    top = max(ns.values(), default=0)
    return top, {m: k for m, k in ns.items() if k != top}


def method_n(table: dict, method: str) -> int:
    """The images behind a method's row: its largest per-metric count (0 when nothing was scored)."""
    c = table["count"][method]
    return max(c.values(), default=0) if isinstance(c, dict) else int(c)


def _fmt(v: float) -> str:
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


def _fmt_rank(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.2f}"


def table_markdown(table: dict, title: str | None = None) -> str:
    """Markdown: best value **bold**, second best _italic_; arrows give each metric's direction.

    The ``n`` column counts the images compared; a metric compared on fewer says so in its
    heading (``ROI-SSIM ↑ (n=14)``), and note lines name the images left out and why.
    """
    ms = table["metrics"]
    _, fewer = table_n(table)
    ranked = bool(table.get("rank_metrics"))
    head = ["method", "n"] + [
        f"{m} {'↑' if table['higher_is_better'][m] else '↓'}" + (f" (n={fewer[m]})" if m in fewer else "") for m in ms
    ] + (["mean rank ↓"] if ranked else [])
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for n in table["methods"]:
        cells = [n, str(method_n(table, n))]
        for m in ms:
            s = _fmt(table["mean"][n][m])
            r = table["rank"][n][m]
            cells.append(f"**{s}**" if r == 1 else f"_{s}_" if r == 2 else s)
        if ranked:
            cells.append(_fmt_rank(table["mean_rank"][n]))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", ("Means over the images every method has (n); **best**, _second best_; ↑ higher is better, "
                   "↓ lower is better.")]
    if ranked:
        lines.append(f"Mean rank: each method's place among the {len(table['methods'])} methods of this table "
                     f"(1 = best, ties averaged) on {', '.join(table['rank_metrics'])}, averaged.")
    lines += [f"Note: {note}" for note in table.get("notes", [])]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def table_latex(table: dict, caption: str | None = None, label: str | None = None) -> str:
    """LaTeX (booktabs) for a paper: best value bold, second best underlined, arrows per metric.

    Needs ``\\usepackage{booktabs}`` in the document. Values are formatted as in the Markdown
    table; a mean that could not be computed prints as ``--``. A metric compared on fewer images
    says so in its heading, and the notes (images left out) follow the table in small type.
    """
    ms = table["metrics"]
    _, fewer = table_n(table)
    ranked = bool(table.get("rank_metrics"))
    arrows = [r"$\uparrow$" if table["higher_is_better"][m] else r"$\downarrow$" for m in ms]
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
    for n in table["methods"]:
        cells = [_latex_escape(n)]
        for m in ms:
            v = table["mean"][n][m]
            txt = "--" if math.isnan(v) else _fmt(v)
            r = table["rank"][n][m]
            cells.append(r"\textbf{" + txt + "}" if r == 1 else r"\underline{" + txt + "}" if r == 2 else txt)
        if ranked:
            v = table["mean_rank"][n]
            cells.append("--" if math.isnan(v) else f"{v:.2f}")
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = table.get("notes", [])
    if notes:
        lines.append(r"\par\smallskip{\footnotesize " + " ".join(_latex_escape(t) for t in notes) + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


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


def write_table(table: dict, out_dir: str | os.PathLike, stem: str = "summary", title: str | None = None) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.csv``, ``<stem>.json`` and ``<stem>.tex`` (atomically); return their paths.

    The CSV has ``method, n, <metrics>`` and, for a metric compared on fewer images, an ``n <metric>``
    column; the JSON is the whole table (NaN as null), notes and left-out images included.
    """
    import io

    out = Path(out_dir)
    md = out / f"{stem}.md"
    atomic_write(md, table_markdown(table, title))
    buf = io.StringIO()
    w = csv.writer(buf)
    _, fewer = table_n(table)
    ranked = bool(table.get("rank_metrics"))
    w.writerow(["method", "n"] + table["metrics"] + (["mean rank"] if ranked else []) + [f"n {m}" for m in fewer])
    for n in table["methods"]:
        w.writerow([n, method_n(table, n)] + [f"{table['mean'][n][m]:.6g}" for m in table["metrics"]]
                   + ([f"{table['mean_rank'][n]:.4g}"] if ranked else []) + [table["count"][n][m] for m in fewer])
    cs = out / f"{stem}.csv"
    atomic_write(cs, buf.getvalue())
    js = out / f"{stem}.json"
    atomic_write(js, json.dumps(json_safe(table), indent=2) + "\n")
    tex = out / f"{stem}.tex"
    atomic_write(tex, table_latex(table, caption=title))
    return [md, cs, js, tex]


def write_rows_csv(scores: MethodScores, path: str | os.PathLike, metrics: Sequence[str]) -> Path:
    """Per-image CSV of one method (atomically)."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["image"] + list(metrics))
    for r in scores.rows:
        w.writerow([r["image"]] + [f"{r.get(m, float('nan')):.6g}" for m in metrics])
    p = Path(path)
    atomic_write(p, buf.getvalue())
    return p


# --------------------------------------------------------------------------------------------
# Foreground maps against annotated regions (``ivfuse eval --foreground MODEL``)
# --------------------------------------------------------------------------------------------

#: Columns of the foreground table: pooled over all pixels of all images, then per-image means.
FOREGROUND_COLUMNS = ("IoU", "F1", "precision", "recall", "mean IoU")


@dataclass
class ForegroundScores:
    """A model's foreground map against the reference regions, pair by pair (:func:`score_foreground`).

    Attributes:
        name: the model (or ``"pseudo"``, the infrared pseudo-ROIs).
        rows: per pair ``{"image", "tp", "fp", "fn", "IoU", "F1"}`` (pixel counts; IoU and F1 NaN
            where the pair has neither reference nor predicted foreground).
        problems: (pair name, message) for pairs that could not be scored.
    """

    name: str
    rows: list[dict] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """IoU, F1, precision and recall of the pooled pixel counts; mean IoU over the images where
        it is defined (NaN where nothing is)."""
        tp, fp, fn = (sum(r[k] for r in self.rows) for k in ("tp", "fp", "fn"))
        per = [r["IoU"] for r in self.rows if not math.isnan(r["IoU"])]

        def ratio(a: int, b: int) -> float:
            return a / b if b else float("nan")

        return {"IoU": ratio(tp, tp + fp + fn), "F1": ratio(2 * tp, 2 * tp + fp + fn), "precision": ratio(tp, tp + fp),
                "recall": ratio(tp, tp + fn), "mean IoU": sum(per) / len(per) if per else float("nan")}


def foreground_counts(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Pixel counts and IoU/F1 of two (H, W) bool masks.

    >>> import numpy as np
    >>> foreground_counts(np.array([[1, 1, 0, 0]], bool), np.array([[0, 1, 1, 0]], bool))
    {'tp': 1, 'fp': 1, 'fn': 1, 'IoU': 0.3333333333333333, 'F1': 0.5}
    """
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    union = tp + fp + fn
    return {"tp": tp, "fp": fp, "fn": fn, "IoU": tp / union if union else float("nan"),
            "F1": 2 * tp / (2 * tp + fp + fn) if union else float("nan")}


def _truth_mask(region, h: int, w: int) -> np.ndarray:
    import numpy as np

    from .data import boxes_to_mask

    a = np.asarray(region)
    if a.dtype == bool and a.shape == (h, w):
        return a
    return boxes_to_mask(a.reshape(-1, 4), h, w)


def foreground_predictor(spec: str, device: str = "auto"):
    """``spec`` -> (name, function (ir, vis tensors (1, 1, H, W)) -> (H, W) foreground probability).

    Args:
        spec: a registered model name, ``NAME=FILE.safetensors`` for other weights, or ``"pseudo"``
            for the infrared pseudo-ROI masks (:func:`ivfuse.data.pseudo_labels`, a training-free
            reference).

    Raises:
        ValueError / LookupError: unknown model, no weights, or a model without a foreground map
            (checked on a small input before any pair is read).
    """
    import numpy as np
    import torch

    if spec == "pseudo":
        from .data import pseudo_labels

        return "pseudo", lambda ir, vis: pseudo_labels(ir[0, 0].numpy())[0].astype(np.float32)
    from .api import resolve_model
    from .infer import run_model, select_device

    name, _, checkpoint = spec.partition("=")
    net = resolve_model(name, checkpoint or None)
    dev = select_device(device)
    probe = torch.full((1, 1, 32, 32), 0.5)
    _, maps = run_model(net, probe, probe, device=dev, return_maps=True, tile=None)
    if "foreground" not in maps:
        raise ValueError(f"--foreground {name}: the model gives no foreground map (its maps: "
                         f"{', '.join(maps) or 'none'}); FGFusion models do, e.g. fgfusion_cpu")

    def predict(ir, vis):
        return run_model(net, ir, vis, device=dev, return_maps=True)[1]["foreground"][0, 0].numpy()

    return name if not checkpoint else f"{name} ({Path(checkpoint).name})", predict


def score_foreground(predictor, pairs: Sequence[PairPaths], truth: RoiSource, threshold: float = 0.5,
                     progress: bool = True) -> ForegroundScores:
    """Threshold a foreground map (``p > threshold``) and compare it with the reference regions.

    Args:
        predictor: (name, function) from :func:`foreground_predictor`.
        pairs: source pairs.
        truth: reference regions per pair, e.g. ``roi_source(labels folder)``: boxes are rasterised
            (:func:`ivfuse.data.boxes_to_mask`), masks used as they are. A pair without boxes has an
            empty reference, so any foreground predicted there counts as false positives.
        threshold: probability above which a pixel is foreground.

    Returns:
        :class:`ForegroundScores`; a pair that cannot be read or run is recorded in ``problems``.
    """
    from tqdm import tqdm

    from .io import load_pair

    name, predict = predictor
    out = ForegroundScores(name)
    for pp in tqdm(pairs, desc=f"foreground {name}", unit="pair", disable=not progress, dynamic_ncols=True):
        try:
            pair = load_pair(pp.ir, pp.vis, name=pp.name)
            ir = pair.ir[0, 0].numpy()
            h, w = ir.shape
            ref = _truth_mask(truth(pp, ir), h, w)
            prob = predict(pair.ir, pair.vis)
        except Exception as exc:  # noqa: BLE001 -- one bad pair must not end the evaluation
            out.problems.append((pp.name, " ".join(str(exc).split())))
            continue
        out.rows.append({"image": pp.name, **foreground_counts(prob > threshold, ref)})
    return out


def foreground_markdown(results: Sequence[ForegroundScores], title: str | None = None) -> str:
    """A Markdown table: one row per model, the :data:`FOREGROUND_COLUMNS` and the image count."""
    lines = [f"### {title}", ""] if title else []
    lines += ["| model | n | " + " | ".join(f"{c} ↑" for c in FOREGROUND_COLUMNS) + " |",
              "|---|---:|" + "---:|" * len(FOREGROUND_COLUMNS)]
    for r in results:
        s = r.summary()
        lines.append(f"| {r.name} | {len(r.rows)} | " + " | ".join(_fmt(s[c]) for c in FOREGROUND_COLUMNS) + " |")
    lines += ["", "IoU, F1, precision, recall: over the pixels of all n images together; mean IoU: the per-image "
              "IoU averaged over the images with reference or predicted foreground."]
    return "\n".join(lines) + "\n"


def write_foreground(results: Sequence[ForegroundScores], out_dir: str | os.PathLike,
                     title: str | None = None) -> list[Path]:
    """Write ``foreground_<name>.csv`` per model and ``foreground_summary.{md,json}`` (atomically)."""
    import io

    out = check_output_dir(out_dir)
    written = []
    for r in results:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["image", "tp", "fp", "fn", "IoU", "F1"])
        for row in r.rows:
            w.writerow([row["image"], row["tp"], row["fp"], row["fn"], f"{row['IoU']:.6g}", f"{row['F1']:.6g}"])
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in r.name)
        written.append(atomic_write(out / f"foreground_{safe}.csv", buf.getvalue()))
    written.append(atomic_write(out / "foreground_summary.md", foreground_markdown(results, title)))
    data = {r.name: {"n": len(r.rows), **r.summary(), "problems": r.problems} for r in results}
    written.append(atomic_write(out / "foreground_summary.json", json.dumps(json_safe(data), indent=2) + "\n"))
    return written
