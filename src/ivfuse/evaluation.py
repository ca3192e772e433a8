"""Scoring folders of fused images and comparison tables (``ivfuse eval``, ``ivfuse bench``).

A *method* is a name and a folder of fused images matched to the source pairs by file stem (or by
a template such as ``"{name}_ADF"`` for VIFB-style folders holding every method's outputs). Each
method gets per-image rows; :func:`comparison_table` turns their means into a table in which the
best and second-best value of each metric are marked, written as Markdown, CSV and JSON.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from .io import IMAGE_EXTENSIONS, PairPaths

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MethodScores",
    "find_fused",
    "roi_source",
    "score_method",
    "score_methods",
    "compare_methods",
    "Comparison",
    "comparison_table",
    "table_latex",
    "table_markdown",
    "write_table",
    "write_rows_csv",
]


@dataclass
class MethodScores:
    """Per-image metric values of one method, and what could not be scored.

    Attributes:
        name: method name.
        rows: one dict per scored pair: {"image": name, metric: value, ...}.
        problems: (pair name, message) for pairs whose fused image is missing, unreadable or
            of the wrong size.
    """

    name: str
    rows: list[dict] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def mean(self, metric: str) -> float:
        vals = [r[metric] for r in self.rows if metric in r and not math.isnan(r[metric])]
        return sum(vals) / len(vals) if vals else float("nan")


def find_fused(folder: str | os.PathLike, names: Iterable[str], template: str = "{name}") -> dict[str, Path | None]:
    """Map each pair name to its fused image in ``folder`` (any image extension), or None.

    Args:
        folder: folder of fused images (searched recursively for names with subfolders).
        names: pair names (relative stems, e.g. "01" or "test/010001").
        template: file stem pattern; ``{name}`` is the pair name, e.g. ``"{name}_ADF"``.
    """
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

    return from_labels


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
    image is recorded in its method's ``problems``; an unreadable source pair in every method's.

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
            evaluator = FusionEvaluator(i, v, metrics=metrics, convention=conv, roi=roi(pp, i) if roi else None)
        except Exception as exc:  # a bad source pair must not end a whole evaluation
            for name in todo:
                results[name].problems.append((pp.name, str(exc)))
            continue
        for name, path in todo.items():
            try:
                f = read_array(path)
                if f.shape[:2] != v.shape[:2]:
                    results[name].problems.append(
                        (pp.name, f"size mismatch: fused {f.shape[1]}x{f.shape[0]}, "
                                  f"infrared {i.shape[1]}x{i.shape[0]}, visible {v.shape[1]}x{v.shape[0]}")
                    )
                    continue
                values = evaluator(f)
            except Exception as exc:  # one bad image must not end a whole evaluation
                results[name].problems.append((pp.name, str(exc)))
                continue
            results[name].rows.append({"image": pp.name, **values})
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
        One :class:`Comparison` per convention, in the given order.
    """
    from .metrics import list_metrics
    from .metrics.conventions import check_convention

    # A typo fails here, not on every image; a convention given twice is scored once.
    conventions = list(dict.fromkeys(check_convention(c) for c in conventions))
    results = []
    for conv in conventions:
        names = list(metrics) if metrics is not None else list_metrics(conv)
        if roi is not None and "ROI-SSIM" not in names:
            names.append("ROI-SSIM")
        methods = score_methods(fused, pairs, names, conv, roi=roi, progress=progress)
        result = Comparison(conv, f"{len(pairs)} pairs, convention '{conv}'", methods,
                            comparison_table(methods, names))
        if out_dir is not None:
            suffix = f"_{conv}" if len(conventions) > 1 else ""
            for ms in methods:
                result.written.append(write_rows_csv(ms, Path(out_dir) / f"per_image_{ms.name}{suffix}.csv", names))
            result.written += write_table(result.table, out_dir, stem=f"summary{suffix}", title=result.title)
        results.append(result)
    return results


def comparison_table(methods: Sequence[MethodScores], metrics: Sequence[str]) -> dict:
    """Mean of each metric per method, with the best and second best marked.

    Returns:
        {"metrics": [...], "higher_is_better": {metric: bool}, "methods": [...],
         "mean": {method: {metric: value}}, "count": {method: n},
         "rank": {method: {metric: 1 | 2 | None}}}
    """
    from .metrics import METRICS

    better = {m: METRICS[m].higher_is_better for m in metrics}
    mean = {ms.name: {m: ms.mean(m) for m in metrics} for ms in methods}
    rank: dict[str, dict[str, int | None]] = {ms.name: {} for ms in methods}
    for m in metrics:
        vals = sorted({round(mean[n][m], 12) for n in mean if not math.isnan(mean[n][m])}, reverse=better[m])
        for n in mean:
            v = mean[n][m]
            r = None
            if not math.isnan(v) and vals:
                if round(v, 12) == vals[0]:
                    r = 1
                elif len(vals) > 1 and round(v, 12) == vals[1]:
                    r = 2
            rank[n][m] = r
    return {
        "metrics": list(metrics),
        "higher_is_better": better,
        "methods": [ms.name for ms in methods],
        "mean": mean,
        "count": {ms.name: len(ms.rows) for ms in methods},
        "rank": rank,
    }


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


def table_markdown(table: dict, title: str | None = None) -> str:
    """Markdown: best value **bold**, second best _italic_; arrows give each metric's direction."""
    ms = table["metrics"]
    head = ["method", "n"] + [f"{m} {'↑' if table['higher_is_better'][m] else '↓'}" for m in ms]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(ms)) + "|"]
    for n in table["methods"]:
        cells = [n, str(table["count"][n])]
        for m in ms:
            s = _fmt(table["mean"][n][m])
            r = table["rank"][n][m]
            cells.append(f"**{s}**" if r == 1 else f"_{s}_" if r == 2 else s)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Mean over the images scored; **best**, _second best_; ↑ higher is better, ↓ lower is better."]
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
    table; a mean that could not be computed prints as ``--``.
    """
    ms = table["metrics"]
    arrows = [r"$\uparrow$" if table["higher_is_better"][m] else r"$\downarrow$" for m in ms]
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + _latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines += [
        r"\begin{tabular}{l" + "r" * len(ms) + "}",
        r"\toprule",
        " & ".join(["Method"] + [f"{_latex_escape(m)} {a}" for m, a in zip(ms, arrows)]) + r" \\",
        r"\midrule",
    ]
    for n in table["methods"]:
        cells = [_latex_escape(n)]
        for m in ms:
            v = table["mean"][n][m]
            txt = "--" if math.isnan(v) else _fmt(v)
            r = table["rank"][n][m]
            cells.append(r"\textbf{" + txt + "}" if r == 1 else r"\underline{" + txt + "}" if r == 2 else txt)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        from .io import _umask_mode

        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(table: dict, out_dir: str | os.PathLike, stem: str = "summary", title: str | None = None) -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.csv``, ``<stem>.json`` and ``<stem>.tex`` (atomically); return their paths."""
    import io

    out = Path(out_dir)
    md = out / f"{stem}.md"
    _atomic_text(md, table_markdown(table, title))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method", "n"] + table["metrics"])
    for n in table["methods"]:
        w.writerow([n, table["count"][n]] + [f"{table['mean'][n][m]:.6g}" for m in table["metrics"]])
    cs = out / f"{stem}.csv"
    _atomic_text(cs, buf.getvalue())
    js = out / f"{stem}.json"
    clean = json.loads(json.dumps(table, default=float).replace("NaN", "null"))
    _atomic_text(js, json.dumps(clean, indent=2) + "\n")
    tex = out / f"{stem}.tex"
    _atomic_text(tex, table_latex(table, caption=title))
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
    _atomic_text(p, buf.getvalue())
    return p
