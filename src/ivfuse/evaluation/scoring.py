"""Scoring folders of fused images: per-image rows of each method, and what could not be scored."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._files import atomic_write
from ..io import IMAGE_EXTENSIONS, PairPaths
from ..report import csv_text
from .roi import RoiSource, nan_reason

__all__ = [
    "MethodScores",
    "Unscored",
    "check_metrics",
    "check_output_dir",
    "describe_unscored",
    "find_fused",
    "score_method",
    "score_methods",
    "write_rows_csv",
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
    from ..io import check_writable_folder

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


def check_metrics(metrics: Sequence[str] | None, convention: str, roi: RoiSource | None) -> list[str] | None:
    """Canonical metric names and convention, or ``ValueError`` before any image is read."""
    from ..metrics.conventions import check_convention
    from ..metrics.registry import resolve_metric

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

    from ..io import read_array
    from ..metrics import DEFAULT_CONVENTION, FusionEvaluator

    conv = convention or DEFAULT_CONVENTION
    metrics = check_metrics(metrics, conv, roi)
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
                    results[name].nan_reasons[(pp.name, m)] = nan_reason(m, roi, region)
        del evaluator  # its source features (tens of image-sized arrays) go with the pair
    return [results[name] for name in names]


def write_rows_csv(scores: MethodScores, path: str | os.PathLike, metrics: Sequence[str]) -> Path:
    """Per-image CSV of one method (atomically)."""
    text = csv_text(["image"] + list(metrics),
                    [[r["image"]] + [f"{r.get(m, float('nan')):.6g}" for m in metrics] for r in scores.rows])
    p = Path(path)
    atomic_write(p, text)
    return p
