"""Class-index masks for segmentation as a downstream test: reading, checking, and the confusion-matrix scores.

Pure Python (NumPy, Pillow). A mask is an image of class indices, one per pixel, with the same
size as its pair (MSRS's ``Segmentation_labels/NAME.png``: 8-bit gray, ids 0..8). It is found by
the pair's name in the split's mask folder (``labels/``, ``masks/``, ``Segmentation_labels/``, ...;
see :func:`ivfuse.data.find_label_sources`); any image extension works. Accepted storage: 8- or
16-bit gray, palette (the palette index is the class), gray+alpha, and RGB whose three channels
are equal; a colour-coded RGB mask is rejected. The value :data:`IGNORE_INDEX` (255) marks pixels
that are neither trained on nor scored.

Scores (:func:`confusion_matrix`, :func:`scores_from_confusion`) follow the usual convention: one
confusion matrix over all test pixels of the split (rows: label, columns: prediction, ignored
pixels left out); IoU of class c = TP / (TP + FP + FN), accuracy of class c = TP / (TP + FN);
a class neither labelled nor predicted anywhere has no IoU (NaN) and is left out of the mean
(mIoU); a class without labelled pixels has no accuracy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data import DatasetError, find_label_sources
from ..io import PairPaths, find_pairs
from .dataset import class_names, fused_image, image_size

__all__ = [
    "IGNORE_INDEX",
    "MaskedImage",
    "SegmentationSplit",
    "check_class_range",
    "confusion_matrix",
    "read_class_mask",
    "scan_mask_split",
    "scores_from_confusion",
    "segment_class_names",
]

#: Mask value of pixels that are neither trained on nor scored.
IGNORE_INDEX = 255


@dataclass(frozen=True)
class MaskedImage:
    """One pair of a split with its checked mask.

    Attributes:
        name: the pair's name.
        pair: the pair's infrared and visible paths.
        mask: the mask file.
        counts: pixels per mask value (``counts[v]`` = pixels of value v, ignore index included).
    """

    name: str
    pair: PairPaths
    mask: Path
    counts: np.ndarray = field(repr=False)


@dataclass
class SegmentationSplit:
    """The pairs with a mask of one split (train or test) of a dataset folder.

    Attributes:
        root: the dataset folder.
        label_dir: its mask folder.
        images: the pairs with a mask, sorted by name.
        missing_labels: images without a mask (left out).
    """

    root: Path
    label_dir: Path
    images: list[MaskedImage] = field(default_factory=list)
    missing_labels: list[Path] = field(default_factory=list)

    def max_class(self, ignore_index: int = IGNORE_INDEX) -> int:
        """The largest class id in the split's masks (the ignore index left out), -1 if there is none."""
        top = -1
        for item in self.images:
            ids = np.flatnonzero(item.counts)
            ids = ids[ids != ignore_index]
            if ids.size:
                top = max(top, int(ids[-1]))
        return top

    def class_pixels(self, num_classes: int) -> np.ndarray:
        """(num_classes,) int64 labelled pixels per class over the split."""
        out = np.zeros(num_classes, dtype=np.int64)
        for item in self.images:
            n = min(num_classes, item.counts.size)
            out[:n] += item.counts[:n]
        return out


def read_class_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a class-index mask.

    Args:
        path: an image of class ids (gray 8/16-bit, palette, gray+alpha, or RGB with equal channels).

    Returns:
        (H, W) int64 class ids (>= 0).

    Raises:
        DatasetError: unreadable, colour-coded or negative; the message names the file.
    """
    from PIL import Image

    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            arr = np.asarray(im.convert("L") if im.mode == "1" else im)
    except Exception as exc:  # Pillow raises many types (and a plugin another library installs, more)
        raise DatasetError(f"'{p}': cannot read the mask ({type(exc).__name__}: {exc})".splitlines()[0]) from exc
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):
            arr = arr[:, :, :-1]  # alpha
        if arr.shape[2] == 3 and not (np.array_equal(arr[:, :, 0], arr[:, :, 1])
                                      and np.array_equal(arr[:, :, 0], arr[:, :, 2])):
            raise DatasetError(f"'{p}': colour-coded mask; expected one class index per pixel (gray or palette)")
        arr = arr[:, :, 0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise DatasetError(f"'{p}': expected an integer mask of class indices, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise DatasetError(f"'{p}': negative class id {int(arr.min())}")
    return arr


def scan_mask_split(root: str | os.PathLike, mask_dir: str | os.PathLike | None = None) -> SegmentationSplit:
    """The pairs of a dataset folder that have a mask; every mask read and checked against its pair's size.

    Args:
        root: the dataset folder (``ir/``, ``vi/`` and a mask folder).
        mask_dir: the mask folder (default: found by name, see :func:`ivfuse.data.find_label_sources`).

    Returns:
        The split; pairs without a mask are listed in ``missing_labels``.

    Raises:
        ValueError: no pairs, no mask folder, an unreadable mask, or a mask whose size differs from its
            pair's images (the message names the mask).
    """
    r = Path(root)
    scan = find_pairs(r)
    if not scan.pairs:
        raise ValueError(f"'{r}': no infrared/visible pairs found")
    labels = find_label_sources(r, boxes="", masks=str(mask_dir) if mask_dir else "auto")
    if labels.mask_dir is None:
        raise ValueError(f"'{r}': segmentation needs a folder of class-index mask images (labels/, masks/, "
                         f"Segmentation_labels/, ...); found none")
    split = SegmentationSplit(root=r, label_dir=labels.mask_dir)
    for pp in scan.pairs:
        mpath = fused_image(labels.mask_dir, pp.name)
        if mpath is None:
            split.missing_labels.append(pp.vis)
            continue
        mask = read_class_mask(mpath)
        h, w = mask.shape
        for img in (pp.vis, pp.ir):
            iw, ih = image_size(img)
            if (iw, ih) != (w, h):
                raise DatasetError(f"'{mpath}': mask is {w}x{h}, its image '{img}' is {iw}x{ih}")
        split.images.append(MaskedImage(pp.name, pp, mpath, np.bincount(mask.ravel())))
    return split


def check_class_range(splits: Sequence[SegmentationSplit], num_classes: int,
                      ignore_index: int = IGNORE_INDEX) -> None:
    """Every mask value must be a class id in ``[0, num_classes)`` or the ignore index.

    Raises:
        DatasetError: the first mask (in split and name order) with an id out of range, named.
    """
    for split in splits:
        for item in split.images:
            ids = np.flatnonzero(item.counts)
            bad = ids[(ids >= num_classes) & (ids != ignore_index)]
            if bad.size:
                raise DatasetError(f"'{item.mask}': class id {int(bad[0])} is out of range 0..{num_classes - 1} "
                                   f"({ignore_index} is ignored); set --num-classes")


def segment_class_names(label_dir: str | os.PathLike, num_classes: int | None, names: Sequence[str] | None,
                        inferred: int) -> list[str]:
    """The class names of a segmentation comparison.

    Args:
        label_dir: the train split's mask folder (its ``classes.txt`` names the classes, if present).
        num_classes: ``--num-classes`` (None: from the names, else ``inferred``).
        names: ``--classes`` (None: ``classes.txt``, else ``0``, ``1``, ...).
        inferred: the largest class id in the masks plus one.

    Raises:
        ValueError: the names and ``num_classes`` disagree, or fewer than 2 classes.
    """
    if names or (Path(label_dir) / "classes.txt").is_file():
        cls = class_names(label_dir, names)
        if num_classes is not None and num_classes != len(cls):
            where = "--classes" if names else f"'{Path(label_dir) / 'classes.txt'}'"
            raise ValueError(f"{where} names {len(cls)} classes, --num-classes is {num_classes}")
    else:
        n = num_classes if num_classes is not None else inferred
        cls = [str(i) for i in range(n)]
    if len(cls) < 2:
        raise ValueError(f"'{label_dir}': segmentation needs at least 2 classes, the masks give {len(cls)}; "
                         f"set --num-classes")
    if "mean" in cls:
        raise ValueError("a class is named 'mean', the tables' column of the mean over the classes; rename it")
    return cls


def confusion_matrix(label: np.ndarray, pred: np.ndarray, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """(num_classes, num_classes) int64 pixel counts, rows the label, columns the prediction.

    Args:
        label: (H, W) integer class ids; pixels equal to ``ignore_index`` are left out.
        pred: (H, W) integer predicted ids in ``[0, num_classes)``.
    """
    if label.shape != pred.shape:
        raise ValueError(f"confusion_matrix: label {label.shape} and prediction {pred.shape} differ in shape")
    keep = label != ignore_index
    lab, prd = label[keep].astype(np.int64), pred[keep].astype(np.int64)
    if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(f"confusion_matrix: label ids outside 0..{num_classes - 1}")
    return np.bincount(lab * num_classes + prd, minlength=num_classes * num_classes).reshape(num_classes,
                                                                                           num_classes)


def scores_from_confusion(conf: np.ndarray) -> dict:
    """IoU and accuracy per class, their means over the classes, and the pixel accuracy.

    Returns:
        ``{"iou": (C,) float64, "acc": (C,) float64, "miou", "macc", "pixel_acc"}``: NaN where a class
        is neither labelled nor predicted (IoU) or not labelled (accuracy); the means skip NaNs.
    """
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    labelled, predicted = conf.sum(axis=1), conf.sum(axis=0)
    union = labelled + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(labelled > 0, tp / labelled, np.nan)
    total = conf.sum()

    def mean(v: np.ndarray) -> float:
        return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")

    return {"iou": iou, "acc": acc, "miou": mean(iou), "macc": mean(acc),
            "pixel_acc": float(tp.sum() / total) if total else float("nan")}
