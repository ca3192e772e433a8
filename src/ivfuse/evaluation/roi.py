"""Where ROI-SSIM's regions come from (``ivfuse eval --roi``), and why a value is NaN."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..io import IMAGE_EXTENSIONS, PairPaths

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RoiSource", "nan_reason", "roi_is_empty", "roi_source"]


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

    from .. import data

    if str(spec) == "pseudo":
        from ..io import as_gray, to_float

        def pseudo(pp: PairPaths, ir: np.ndarray) -> np.ndarray:
            # The infrared as the training engine sees it (float [0, 1], BT.601 gray): the same pseudo-ROIs.
            return data.pseudo_labels(as_gray(to_float(ir)))[1]

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


def roi_is_empty(r) -> bool:
    """True for no boxes, or a mask with no pixel inside."""
    import numpy as np

    a = np.asarray(r)
    return a.size == 0 or (a.ndim == 2 and a.shape[1:] != (4,) and not a.any())


def nan_reason(metric: str, roi: RoiSource | None, roi_value) -> str:
    """Why ``metric`` is NaN on an image whose ROI was ``roi_value``."""
    if metric == "ROI-SSIM" and roi is not None:
        if roi_is_empty(roi_value):
            return getattr(roi, "empty_reason", "no ROI for this pair")
        return "the ROI lies outside the region SSIM is averaged over (the border band)"
    return f"{metric} is undefined (NaN) for this image"
