"""Foreground maps against annotated regions (``ivfuse eval --foreground MODEL``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import atomic_write
from ..io import PairPaths
from ..report import csv_text, fmt_value, json_text, markdown_rows
from .roi import RoiSource
from .scoring import check_output_dir

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FOREGROUND_COLUMNS", "ForegroundScores", "foreground_counts", "foreground_markdown",
           "foreground_predictor", "score_foreground", "write_foreground"]

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

    from ..data import boxes_to_mask

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
        from ..data import pseudo_labels

        return "pseudo", lambda ir, vis: pseudo_labels(ir[0, 0].numpy())[0].astype(np.float32)
    from ..api import resolve_model
    from ..infer import run_model, select_device

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

    from ..io import load_pair

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
    lines += markdown_rows(["model", "n"] + [f"{c} ↑" for c in FOREGROUND_COLUMNS],
                           [[r.name, str(len(r.rows))] + [fmt_value(r.summary()[c]) for c in FOREGROUND_COLUMNS]
                            for r in results], "lr" + "r" * len(FOREGROUND_COLUMNS))
    lines += ["", "IoU, F1, precision, recall: over the pixels of all n images together; mean IoU: the per-image "
              "IoU averaged over the images with reference or predicted foreground."]
    return "\n".join(lines) + "\n"


def write_foreground(results: Sequence[ForegroundScores], out_dir: str | os.PathLike,
                     title: str | None = None) -> list[Path]:
    """Write ``foreground_<name>.csv`` per model and ``foreground_summary.{md,json}`` (atomically)."""
    out = check_output_dir(out_dir)
    written = []
    for r in results:
        text = csv_text(["image", "tp", "fp", "fn", "IoU", "F1"],
                        [[row["image"], row["tp"], row["fp"], row["fn"], f"{row['IoU']:.6g}", f"{row['F1']:.6g}"]
                         for row in r.rows])
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in r.name)
        written.append(atomic_write(out / f"foreground_{safe}.csv", text))
    written.append(atomic_write(out / "foreground_summary.md", foreground_markdown(results, title)))
    data = {r.name: {"n": len(r.rows), **r.summary(), "problems": r.problems} for r in results}
    written.append(atomic_write(out / "foreground_summary.json", json_text(data)))
    return written
