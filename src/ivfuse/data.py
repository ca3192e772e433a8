"""Paired training data: crops and flips, weak labels (boxes, masks), pseudo-labels, sampling.

A :class:`PairedDataset` reads the same folder layouts as ``ivfuse fuse`` (see
:func:`ivfuse.io.find_pairs`) with the same luminance handling as inference
(:func:`ivfuse.io.load_pair`: infrared as gray, visible as BT.601 Y), checks every pair before
training starts, and yields random crops with their labels. :func:`collate_pairs` stacks samples
into the batch dict of the training contract:

==============  =====================================  ============================================
key             shape / type                           meaning
==============  =====================================  ============================================
``ir``          (B, 1, h, w) float32 in [0, 1]         infrared (gray)
``vis``         (B, 1, h, w) float32 in [0, 1]         visible luminance
``roi``         (B, 1, h, w) float32 in {0, 1}         union of boxes (annotation, else pseudo-ROI)
``mask``        (B, 1, h, w) float32 in [0, 1]         foreground (mask PNG, else the boxes, else pseudo-mask)
``name``        list[str]                              pair names
``boxes``       list of (N_i, 4) float32 tensors       x0, y0, x1, y1 in crop pixels, x1/y1 exclusive
``has_boxes``   (B,) bool                              ROI from annotations (else pseudo)
``has_mask``    (B,) bool                              mask from annotations (else pseudo)
==============  =====================================  ============================================

Labels, optional per pair, found next to the modality folders (or given explicitly):

* boxes: YOLO txt (``labels/<name>.txt``: ``class cx cy w h`` normalised, or a polygon),
  Pascal VOC xml (``Annotations/<name>.xml``), COCO json (``annotations.json``,
  ``annotations/*.json`` or any json with ``images`` and ``annotations``), matched by file stem;
* masks: PNG (or any image) in ``masks/``, ``mask/``, ``Label/``, ``labels/``,
  ``Segmentation_labels/``; every non-zero pixel is foreground (class-index maps such as MSRS's
  work as they are).

Pairs without annotations get pseudo-labels from the infrared image (:func:`pseudo_labels`,
parameters in :class:`PseudoLabelConfig`).

Determinism: a sample is addressed as ``dataset[(index, sample_seed)]``; the crop position and
flips come only from ``sample_seed``. :class:`PairSampler` derives those seeds from
``(seed, epoch, position)``, so the data a run sees is a function of the seed and the step.
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

from .io import IMAGE_EXTENSIONS, ImageReadError, PairError, PairPaths, find_pairs, load_pair, read_array

__all__ = [
    "DataConfig",
    "DatasetError",
    "LabelSources",
    "PairSampler",
    "PairedDataset",
    "PseudoLabelConfig",
    "boxes_to_mask",
    "collate_pairs",
    "crop_boxes",
    "find_label_sources",
    "flip_boxes",
    "pseudo_labels",
    "read_boxes",
    "read_coco",
    "read_mask",
    "read_pair_mask",
    "read_voc",
    "read_yolo",
    "rot90_boxes",
    "sample_seed",
]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass
class PseudoLabelConfig:
    """How pseudo-labels are made from the infrared image when a pair has no annotation.

    The infrared image is smoothed with a Gaussian (``sigma`` pixels); a pixel is "warm" when the
    smoothed value exceeds ``max(mean + k * std, median + min_contrast)`` of the smoothed image.
    Warm pixels are opened/closed with a ``(2 * dilate + 1)`` square, connected components smaller
    than ``min_area`` (fraction of the image) are dropped, and at most ``max_regions`` of the
    largest are kept. The pseudo-mask is the union of the kept components; the pseudo-ROI is the
    union of their bounding boxes, each grown by ``box_margin`` pixels. See
    :func:`ivfuse.data.pseudo_labels`.

    Attributes:
        mode: "auto" (pseudo-labels where a pair has no annotation), "always" (ignore
            annotations) or "never" (pairs without annotation get all-zero ROI and mask).
        sigma: Gaussian smoothing in pixels before thresholding.
        k: standard deviations above the mean for the threshold.
        min_contrast: the threshold is at least the median plus this (in [0, 1] units), so flat
            images yield no regions.
        min_area: smallest kept component, as a fraction of the image area.
        max_regions: keep at most this many components (the largest).
        dilate: radius in pixels of the morphological closing (and of the opening that removes
            specks).
        box_margin: pixels added on each side of a component's bounding box.
    """

    mode: str = "auto"
    sigma: float = 2.0
    k: float = 1.5
    min_contrast: float = 0.1
    min_area: float = 0.0005
    max_regions: int = 16
    dilate: int = 1
    box_margin: int = 2


@dataclass
class DataConfig:
    """The training set and its augmentation.

    Attributes:
        path: dataset folder with infrared/visible subfolders (as for ``ivfuse fuse``).
        ir_dir, vis_dir: explicit modality folders instead of ``path``.
        more: further dataset folders trained on together with ``path`` (each found, labelled
            and checked as ``path`` is; the pairs are concatenated, see :func:`training_pairs`).
        boxes: "auto" (look for ``labels/`` YOLO txt, ``Annotations/`` VOC xml or a COCO json in
            the dataset folder), a folder, a COCO json file, or "" for none.
        masks: "auto" (look for ``masks/``, ``mask/``, ``Label/``, ``labels/`` PNGs), a folder,
            or "" for none. Any non-zero mask pixel is foreground.
        crop: side of the square training crop in pixels (images smaller than that are padded
            by reflection; the labels by zeros).
        batch_size: pairs per step *per process* (DDP multiplies it by the world size).
        hflip, vflip: random horizontal / vertical flips (probability 0.5 each).
        rot90: random rotation by a multiple of 90 degrees.
        resize: resample infrared onto the visible grid when sizes differ (otherwise the dataset
            check fails on such pairs).
        cache: keep decoded pairs in memory: "auto" (if they fit in ``cache_mb``), "yes", "no".
            Labels (boxes, bit-packed masks, pseudo-labels) are kept in any case, about H*W/4
            bytes per pair.
        cache_mb: memory budget of the "auto" cache.
        workers: DataLoader worker processes (0: load in the main process).
        pseudo: how pseudo-labels are made.
        masks_from_boxes: where a pair has boxes but no mask file, its foreground mask is the
            boxes rasterised (what FGFusion's mask-weighted loss gets on box-annotated sets such as
            MSRS or M3FD) instead of the infrared pseudo-mask.
    """

    path: str = ""
    ir_dir: str = ""
    vis_dir: str = ""
    more: list = field(default_factory=list)
    boxes: str = "auto"
    masks: str = "auto"
    crop: int = 128
    batch_size: int = 16
    hflip: bool = True
    vflip: bool = False
    rot90: bool = False
    resize: bool = False
    cache: str = "auto"
    cache_mb: int = 1024
    workers: int = 0
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    masks_from_boxes: bool = True


_MASK_DIRS = ("masks", "mask", "label", "labels", "segmentation_labels", "segmentation", "seg")
_BOX_DIRS_YOLO = ("labels", "label", "yolo", "labels_yolo")
_BOX_DIRS_VOC = ("annotations", "annotation", "xml", "voc")


class DatasetError(ValueError):
    """The training data cannot be used as given; the message lists the problems found."""


# --------------------------------------------------------------------------------------------
# Box parsers (all return float32 arrays (N, 4) of x0, y0, x1, y1 in pixels, x1/y1 exclusive)
# --------------------------------------------------------------------------------------------


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def read_yolo(path: str | os.PathLike, width: int, height: int) -> np.ndarray:
    """Read a YOLO label file.

    Each line is ``class cx cy w h`` with coordinates normalised to [0, 1], or a segmentation
    polygon ``class x1 y1 x2 y2 ...`` (its bounding box is used). Blank lines and ``#`` comments
    are skipped; a missing file means no boxes.

    Args:
        path: the ``.txt`` file.
        width, height: the image size in pixels.

    Returns:
        (N, 4) float32 boxes ``x0, y0, x1, y1`` in pixels.

    Raises:
        DatasetError: a line cannot be parsed (message names file and line).
    """
    p = Path(path)
    if not p.is_file():
        return _empty_boxes()
    out = []
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        tok = line.split()
        try:
            vals = [float(t) for t in tok[1:]]
        except ValueError as exc:
            raise DatasetError(f"'{p}', line {lineno}: not a YOLO row ({line!r})") from exc
        if len(vals) == 4:
            cx, cy, w, h = vals
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(vals) >= 6 and len(vals) % 2 == 0:
            xs, ys = vals[0::2], vals[1::2]
            x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        else:
            raise DatasetError(f"'{p}', line {lineno}: expected 'class cx cy w h' or a polygon, got {line!r}")
        out.append((x0 * width, y0 * height, x1 * width, y1 * height))
    return np.asarray(out, dtype=np.float32).reshape(-1, 4)


def read_voc(path: str | os.PathLike) -> np.ndarray:
    """Read a Pascal VOC annotation (``<object><bndbox><xmin>...``).

    VOC coordinates are 1-based and inclusive; they become 0-based with exclusive ends
    (``x0 = xmin - 1``, ``x1 = xmax``).

    Raises:
        DatasetError: not well-formed XML or a box without numbers.
    """
    p = Path(path)
    if not p.is_file():
        return _empty_boxes()
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"'{p}': not a valid VOC xml file ({exc})") from exc
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        try:
            xmin, ymin, xmax, ymax = (float(bb.findtext(k, "")) for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as exc:
            raise DatasetError(f"'{p}': object '{obj.findtext('name', '?')}' has a box without numbers") from exc
        out.append((xmin - 1.0, ymin - 1.0, xmax, ymax))
    return np.asarray(out, dtype=np.float32).reshape(-1, 4)


def read_coco(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the boxes of a COCO detection json, keyed by image.

    Every image is listed under its ``file_name`` without extension (posix, as given) and under
    its bare stem, so both ``"001"`` and ``"train/001"`` style pair names match. Images with no
    annotation map to an empty (0, 4) array. Crowd boxes are included.

    Returns:
        ``{image key: (N, 4) float32 x0, y0, x1, y1}``.

    Raises:
        DatasetError: not JSON, or not COCO (no ``images``/``annotations`` lists).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"'{p}': cannot read COCO json ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or "annotations" not in data:
        raise DatasetError(f"'{p}': not a COCO file (needs 'images' and 'annotations' lists)")
    by_id: dict[Any, list] = {img["id"]: [] for img in data["images"] if "id" in img}
    for ann in data.get("annotations") or []:
        bbox = ann.get("bbox")
        if bbox is None or ann.get("image_id") not in by_id:
            continue
        x, y, w, h = (float(v) for v in bbox)
        by_id[ann["image_id"]].append((x, y, x + w, y + h))
    out: dict[str, np.ndarray] = {}
    for img in data["images"]:
        if "id" not in img or "file_name" not in img:
            continue
        boxes = np.asarray(by_id[img["id"]], dtype=np.float32).reshape(-1, 4)
        fname = Path(str(img["file_name"]).replace("\\", "/"))
        out[fname.with_suffix("").as_posix()] = boxes
        out.setdefault(fname.stem, boxes)
    return out


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask image as a bool (H, W) array: any non-zero pixel (in any channel) is foreground.

    Raises:
        ImageReadError: the file cannot be read.
    """
    arr = read_array(path)
    return arr.any(axis=-1) if arr.ndim == 3 else arr > 0


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def boxes_to_mask(boxes: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """Rasterise boxes: a pixel is inside when its centre lies in ``[x0, x1) x [y0, y1)``.

    A box thinner than a pixel still marks the pixel it falls in.

    Returns:
        bool (H, W) array.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    m = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in b:
        if not (x1 > x0 and y1 > y0):
            continue
        c0, c1 = math.floor(x0 + 0.5), math.floor(x1 + 0.5)
        r0, r1 = math.floor(y0 + 0.5), math.floor(y1 + 0.5)
        c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, width), min(r1, height)
        if c1 > c0 and r1 > r0:
            m[r0:r1, c0:c1] = True
    return m


def crop_boxes(boxes: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    """Move boxes into a crop with top-left ``(x, y)`` and size ``width x height``; clip; drop empty ones."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) - np.array([x, y, x, y], dtype=np.float32)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return b[keep]


def flip_boxes(boxes: np.ndarray, width: int, height: int, horizontal: bool) -> np.ndarray:
    """Mirror boxes left-right (``horizontal``) or top-bottom in an image of that size."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    if horizontal:
        b[:, [0, 2]] = width - b[:, [2, 0]]
    else:
        b[:, [1, 3]] = height - b[:, [3, 1]]
    return b


def rot90_boxes(boxes: np.ndarray, width: int, height: int, k: int) -> np.ndarray:
    """Boxes after ``torch.rot90(img, k, dims=(-2, -1))`` (k quarter turns counter-clockwise) of a
    ``width x height`` image."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    w, h = width, height
    for _ in range(k % 4):
        # A pixel (row r, col c) moves to (w - 1 - c, r): x' = y, y' = w - x.
        b = np.stack([b[:, 1], w - b[:, 2], b[:, 3], w - b[:, 0]], axis=1)
        w, h = h, w
    return b.astype(np.float32).reshape(-1, 4)


# --------------------------------------------------------------------------------------------
# Pseudo-labels
# --------------------------------------------------------------------------------------------


def pseudo_labels(ir: np.ndarray | torch.Tensor, cfg: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Salient warm regions of an infrared image, as a mask and boxes.

    1. Smooth with a Gaussian of ``cfg.sigma`` pixels (truncated at 3 sigma, reflected borders).
    2. Threshold at ``max(mean + cfg.k * std, median + cfg.min_contrast)`` of the smoothed image:
       warm relative to the scene, and clearly warmer than the typical pixel (a flat or noisy
       image yields nothing).
    3. Open, then close, with a ``(2 * cfg.dilate + 1)`` square (removes specks, fills gaps;
       borders replicated).
    4. Keep connected components (8-connected) of at least ``cfg.min_area * H * W`` pixels, at
       most ``cfg.max_regions`` of them, largest first.
    5. Mask = kept components; boxes = their bounding boxes grown by ``cfg.box_margin`` pixels.

    Args:
        ir: (H, W) infrared in [0, 1] (numpy or tensor; (1, 1, H, W) accepted).
        cfg: a :class:`PseudoLabelConfig` (defaults when None).

    Returns:
        (mask bool (H, W), boxes float32 (N, 4) ``x0, y0, x1, y1``).
    """
    from scipy import ndimage

    if cfg is None:
        cfg = PseudoLabelConfig()
    a = ir.detach().cpu().numpy() if isinstance(ir, torch.Tensor) else np.asarray(ir)
    a = np.squeeze(a).astype(np.float32)
    if a.ndim != 2:
        raise ValueError(f"pseudo_labels: expected an (H, W) image, got shape {np.shape(ir)}")
    h, w = a.shape
    s = ndimage.gaussian_filter(a, cfg.sigma, mode="reflect", truncate=3.0) if cfg.sigma > 0 else a
    thr = max(float(s.mean()) + cfg.k * float(s.std()), float(np.median(s)) + cfg.min_contrast)
    warm = (s > thr).astype(np.uint8)
    d = int(cfg.dilate)
    if d > 0 and warm.any():
        # opening then closing with a (2d+1) square, as separable min/max filters (borders replicated)
        k = 2 * d + 1
        warm = ndimage.maximum_filter(ndimage.minimum_filter(warm, k, mode="nearest"), k, mode="nearest")
        warm = ndimage.minimum_filter(ndimage.maximum_filter(warm, k, mode="nearest"), k, mode="nearest")
    lab, n = ndimage.label(warm, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros((h, w), dtype=bool), _empty_boxes()
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(-sizes, kind="stable")
    keep = [int(i) + 1 for i in order if sizes[i] >= cfg.min_area * h * w][: int(cfg.max_regions)]
    if not keep:
        return np.zeros((h, w), dtype=bool), _empty_boxes()
    mask = np.isin(lab, keep)
    slices = ndimage.find_objects(lab)
    m = float(cfg.box_margin)
    boxes = []
    for i in sorted(keep):
        sy, sx = slices[i - 1]
        boxes.append((max(sx.start - m, 0.0), max(sy.start - m, 0.0), min(sx.stop + m, w), min(sy.stop + m, h)))
    return mask, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


# --------------------------------------------------------------------------------------------
# Label discovery
# --------------------------------------------------------------------------------------------


@dataclass
class LabelSources:
    """Where a dataset's labels come from.

    Attributes:
        box_format: "yolo", "voc", "coco" or "" (none).
        box_path: the folder (YOLO, VOC) or json file (COCO).
        mask_dir: the mask folder, or None.
        coco: parsed COCO boxes (filled on first use).
    """

    box_format: str = ""
    box_path: Path | None = None
    mask_dir: Path | None = None
    coco: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def describe(self) -> str:
        parts = [f"boxes: {self.box_format} ({self.box_path})" if self.box_format else "boxes: none"]
        parts.append(f"masks: {self.mask_dir}" if self.mask_dir else "masks: none")
        return ", ".join(parts)


def _subdirs(root: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()} if root.is_dir() else {}


def _has_files(folder: Path, exts: Sequence[str]) -> bool:
    return any(p.suffix.lower() in exts for p in folder.rglob("*") if p.is_file())


def _is_coco(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16).decode("utf-8", "ignore")
    except OSError:
        return False
    return '"images"' in head or '"annotations"' in head


def _box_source_from_path(p: Path) -> tuple[str, Path]:
    if p.is_file():
        if p.suffix.lower() == ".json":
            return "coco", p
        raise DatasetError(f"'{p}': box annotations must be a folder (YOLO txt, VOC xml) or a COCO .json file")
    if not p.is_dir():
        raise DatasetError(f"'{p}': box annotation path not found")
    if _has_files(p, (".xml",)):
        return "voc", p
    if _has_files(p, (".txt",)):
        return "yolo", p
    jsons = sorted(q for q in p.glob("*.json") if _is_coco(q))
    if len(jsons) == 1:
        return "coco", jsons[0]
    raise DatasetError(f"'{p}': no YOLO .txt, VOC .xml or single COCO .json found")


def find_label_sources(root: str | os.PathLike | None, boxes: str = "auto", masks: str = "auto") -> LabelSources:
    """Locate box annotations and masks of a dataset folder.

    Args:
        root: the dataset folder (the one holding the modality subfolders); None disables "auto".
        boxes: "auto", a folder, a COCO json, or "" for none.
        masks: "auto", a folder, or "" for none.
    """
    src = LabelSources()
    r = Path(root) if root else None
    if boxes and boxes != "auto":
        src.box_format, src.box_path = _box_source_from_path(Path(boxes))
    elif boxes == "auto" and r is not None and r.is_dir():
        subs = _subdirs(r)
        for name in _BOX_DIRS_VOC:
            if name in subs and _has_files(subs[name], (".xml",)):
                src.box_format, src.box_path = "voc", subs[name]
                break
        if not src.box_format:
            for name in _BOX_DIRS_YOLO:
                if name in subs and _has_files(subs[name], (".txt",)):
                    src.box_format, src.box_path = "yolo", subs[name]
                    break
        if not src.box_format:
            cands = [r / "annotations.json", r / "instances.json"]
            for name in _BOX_DIRS_VOC:
                if name in subs:
                    cands += sorted(subs[name].glob("*.json"))
            cands += sorted(r.glob("*.json"))
            for c in cands:
                if c.is_file() and _is_coco(c):
                    src.box_format, src.box_path = "coco", c
                    break
    if masks and masks != "auto":
        m = Path(masks)
        if not m.is_dir():
            raise DatasetError(f"'{m}': mask folder not found")
        src.mask_dir = m
    elif masks == "auto" and r is not None and r.is_dir():
        subs = _subdirs(r)
        for name in _MASK_DIRS:
            if name in subs and _has_files(subs[name], IMAGE_EXTENSIONS):
                src.mask_dir = subs[name]
                break
    return src


def read_boxes(labels: LabelSources, name: str, width: int, height: int) -> tuple[np.ndarray, bool]:
    """The boxes of the pair ``name`` from a dataset's box annotations.

    Args:
        labels: from :func:`find_label_sources`, with a box format.
        name: the pair's name (file stem, or relative path without extension).
        width, height: the pair's size (YOLO coordinates are relative to it).

    Returns:
        ((N, 4) float32 ``x0, y0, x1, y1`` in pixels, whether the pair has an annotation).
    """
    fmt, path = labels.box_format, labels.box_path
    if not fmt or path is None:
        return _empty_boxes(), False
    if fmt == "coco":
        if labels.coco is None:
            labels.coco = read_coco(path)
        coco = labels.coco
        for key in (name, Path(name).name):
            if key in coco:
                return coco[key], True
        return _empty_boxes(), False
    ext = ".txt" if fmt == "yolo" else ".xml"
    f = _find_by_name(path, name, (ext,))
    if f is None:
        return _empty_boxes(), False
    return (read_yolo(f, width, height) if fmt == "yolo" else read_voc(f)), True


def read_pair_mask(labels: LabelSources, name: str, width: int, height: int) -> np.ndarray | None:
    """The mask of the pair ``name`` from a dataset's mask folder, or None when it has none.

    Args:
        labels: from :func:`find_label_sources`.
        name: the pair's name (file stem, or relative path without extension).
        width, height: the pair's size; the mask must match it.

    Returns:
        (H, W) bool mask, or None (no mask folder, or no mask for this pair).

    Raises:
        DatasetError: the mask has another size than the pair.
        ImageReadError: the mask file cannot be read.
    """
    if labels.mask_dir is None:
        return None
    path = _find_by_name(labels.mask_dir, name, IMAGE_EXTENSIONS)
    if path is None:
        return None
    mask = read_mask(path)
    if mask.shape != (height, width):
        raise DatasetError(
            f"mask '{path}' is {mask.shape[1]}x{mask.shape[0]} but the pair '{name}' is {width}x{height}"
        )
    return mask


def _find_by_name(folder: Path, name: str, exts: Sequence[str]) -> Path | None:
    for stem in dict.fromkeys((name, Path(name).name)):
        for ext in exts:
            for e in (ext, ext.upper()):
                p = folder / f"{stem}{e}"
                if p.is_file():
                    return p
    return None


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


@dataclass
class _Item:
    """One decoded pair with its full-size labels."""

    ir: torch.Tensor  # (H, W) float32
    vis: torch.Tensor  # (H, W) float32
    roi: torch.Tensor  # (H, W) bool
    mask: torch.Tensor  # (H, W) bool
    boxes: np.ndarray  # (N, 4)
    has_boxes: bool
    has_mask: bool


class _threads:
    """Temporarily set torch's intra-op thread count."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        self.old = torch.get_num_threads()
        if self.old != self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        if torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The augmentation seed of the sample at ``position`` of ``epoch`` (a 63-bit int)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x5EED, int(epoch), int(position)])
               .generate_state(2, np.uint64)[0] >> np.uint64(1))


class PairedDataset(Dataset):
    """Infrared/visible pairs with labels, as random crops (training) or whole images.

    Every pair is decoded and checked when the dataset is built (unreadable files, size
    mismatches, unparseable labels, masks of the wrong size), and all problems are reported
    together in one :class:`DatasetError` before any training starts.

    Args:
        root: dataset folder with modality subfolders (or give ``ir_dir`` and ``vis_dir``).
        config: a :class:`DataConfig` (crop, flips, labels, pseudo-labels, cache); its
            ``path``/``ir_dir``/``vis_dir`` are used when ``root`` is None.
        train: random crops and flips; otherwise whole images, no augmentation.
        ir_dir, vis_dir: explicit modality folders.
        max_pairs: keep only the first pairs (sorted by name).
        progress: show a progress bar while checking.

    Indexing: ``ds[i]`` or ``ds[(i, sample_seed)]``; returns a dict with ``ir``, ``vis``, ``roi``,
    ``mask`` ((1, h, w) float32), ``boxes`` ((N, 4) float32), ``has_boxes``, ``has_mask``, ``name``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        config: Any = None,
        train: bool = True,
        ir_dir: str | os.PathLike | None = None,
        vis_dir: str | os.PathLike | None = None,
        max_pairs: int | None = None,
        progress: bool = False,
    ) -> None:
        self.cfg = config if config is not None else DataConfig()
        self.train = train
        root = root if root is not None else (self.cfg.path or None)
        ir_dir = ir_dir if ir_dir is not None else (self.cfg.ir_dir or None)
        vis_dir = vis_dir if vis_dir is not None else (self.cfg.vis_dir or None)
        try:
            if root is not None:
                scan = find_pairs(root)
            elif ir_dir is not None and vis_dir is not None:
                scan = find_pairs(ir_dir=ir_dir, vis_dir=vis_dir)
            else:
                raise DatasetError("no training data: give a dataset folder (--data DIR) or both ir and vis folders")
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise DatasetError(str(exc)) from exc
        except DatasetError:
            raise
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        where = root if root is not None else f"{ir_dir} + {vis_dir}"
        if not scan.pairs:
            n_ir = sum(1 for p in scan.ir_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            n_vis = sum(1 for p in scan.vis_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            raise DatasetError(
                f"'{where}': no infrared/visible pairs (images are matched by file name; {scan.ir_dir.name}/ has "
                f"{n_ir} images, {scan.vis_dir.name}/ has {n_vis})"
            )
        self.scan = scan
        self.pairs: list[PairPaths] = scan.pairs[:max_pairs] if max_pairs else list(scan.pairs)
        label_root = Path(root) if root is not None else Path(ir_dir).parent
        self.labels = find_label_sources(label_root, self.cfg.boxes, self.cfg.masks)
        self.crop = int(self.cfg.crop)
        if train and self.crop < 1:
            raise DatasetError(f"crop must be >= 1, got {self.crop}")
        self._cache: dict[int, _Item] = {}
        self._cache_enabled = self.cfg.cache == "yes"
        self._labels: dict[int, tuple] = {}  # labels are always kept: pseudo-labels cost more than decoding
        self._check(progress)

    # ---------------------------------------------------------------------------- loading

    def _load_item(self, i: int) -> _Item:
        pp = self.pairs[i]
        pair = load_pair(pp.ir, pp.vis, resize=self.cfg.resize, name=pp.name)
        ir, vis = pair.ir[0, 0].contiguous(), pair.vis[0, 0].contiguous()
        h, w = vis.shape
        labels = self._labels.get(i)
        if labels is None:
            labels = self._labels[i] = self._make_labels(pp, ir, h, w)
        boxes, has_boxes, bits, has_mask = labels
        mask = np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)
        roi = boxes_to_mask(boxes, h, w)
        return _Item(ir, vis, torch.from_numpy(roi), torch.from_numpy(mask), boxes, has_boxes, has_mask)

    def _make_labels(
        self, pp: PairPaths, ir: torch.Tensor, h: int, w: int
    ) -> tuple[np.ndarray, bool, np.ndarray, bool]:
        """(boxes, has_boxes, packed mask bits, has_mask) of a pair; kept for the whole run (about H*W/4 bytes)."""
        pcfg = self.cfg.pseudo
        boxes, has_boxes = _empty_boxes(), False
        if pcfg.mode != "always" and self.labels.box_format:
            boxes, has_boxes = self._read_boxes(pp.name, w, h)
        mask, has_mask = None, False
        if pcfg.mode != "always":
            mask = read_pair_mask(self.labels, pp.name, w, h)
            has_mask = mask is not None
        if mask is None and has_boxes and self.cfg.masks_from_boxes:
            mask = boxes_to_mask(boxes, h, w).astype(bool)  # boxes but no mask files (MSRS, M3FD, VOC, COCO)
        need_pseudo = pcfg.mode == "always" or (pcfg.mode == "auto" and (not has_boxes or mask is None))
        if need_pseudo:
            p_mask, p_boxes = pseudo_labels(ir.numpy(), pcfg)
            if not has_boxes:
                boxes = p_boxes
            if mask is None:
                mask = p_mask
        if mask is None:
            mask = np.zeros((h, w), dtype=bool)
        return boxes, has_boxes, np.packbits(mask.ravel()), has_mask

    def _read_boxes(self, name: str, width: int, height: int) -> tuple[np.ndarray, bool]:
        return read_boxes(self.labels, name, width, height)

    def _item(self, i: int) -> _Item:
        item = self._cache.get(i)
        if item is None:
            item = self._load_item(i)
            if self._cache_enabled:
                self._cache[i] = item
        return item

    def _check(self, progress: bool) -> None:
        """Decode every pair once; collect every problem; fill the cache when it fits."""
        budget = float(self.cfg.cache_mb) * 2**20
        used = 0.0
        auto = self.cfg.cache == "auto"
        problems: list[str] = []
        sizes: list[tuple[int, int]] = []
        it: Any = range(len(self.pairs))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="checking pairs", unit="pair", leave=False)
        for i in it:
            try:
                with _threads(1):  # small tensors: extra intra-op threads only add contention
                    item = self._load_item(i)
            except (ImageReadError, PairError, DatasetError) as exc:
                problems.append(f"{self.pairs[i].name}: {exc}")
                continue
            h, w = item.vis.shape
            sizes.append((h, w))
            nbytes = 2 * 4 * h * w + 2 * h * w
            if self._cache_enabled or (auto and used + nbytes <= budget):
                self._cache[i] = item
                used += nbytes
        if auto:
            self._cache_enabled = len(self._cache) == len(self.pairs)
            if not self._cache_enabled:
                self._cache.clear()
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise DatasetError(
                f"{len(problems)} of {len(self.pairs)} training pairs are unusable:\n  {shown}{more}\n"
                "fix or remove them (pass --set data.resize=true to resample infrared onto the visible grid)"
            )
        self.sizes = sizes

    # ---------------------------------------------------------------------------- access

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [p.name for p in self.pairs]

    def summary(self) -> str:
        n_box = n_mask = 0
        for lab in self._labels.values():
            n_box += lab[1]
            n_mask += lab[3]
        lab = self.labels.describe()
        cached = "cached in memory" if self._cache_enabled else "read on demand"
        extra = f", {len(self.scan.unmatched)} files without partner ignored" if self.scan.unmatched else ""
        annotated = f" ({n_box} with boxes, {n_mask} with masks)"
        return f"{len(self)} pairs from {self.scan.ir_dir.parent} ({cached}{extra}); {lab}{annotated}"

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            i, seed = int(key[0]), int(key[1])
        else:
            i, seed = int(key), sample_seed(0, 0, int(key))
        item = self._item(i)
        ir, vis = item.ir[None], item.vis[None]
        roi, mask = item.roi[None].float(), item.mask[None].float()
        boxes = item.boxes
        if self.train:
            ir, vis, roi, mask, boxes = self._augment(ir, vis, roi, mask, boxes, np.random.default_rng(seed))
        return {
            "ir": ir.contiguous(),
            "vis": vis.contiguous(),
            "roi": roi.contiguous(),
            "mask": mask.contiguous(),
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 4)),
            "has_boxes": item.has_boxes,
            "has_mask": item.has_mask,
            "name": self.pairs[i].name,
        }

    def _augment(self, ir, vis, roi, mask, boxes, rng: np.random.Generator):
        c = self.crop
        h, w = ir.shape[-2:]
        if h < c or w < c:  # pad bottom/right: images by reflection, labels by zeros
            ph, pw = max(c - h, 0), max(c - w, 0)
            img = _pad_reflect(torch.cat((ir, vis)), h + ph, w + pw)
            ir, vis = img[:1], img[1:]
            roi = torch.nn.functional.pad(roi, (0, pw, 0, ph))
            mask = torch.nn.functional.pad(mask, (0, pw, 0, ph))
            h, w = ir.shape[-2:]
        y = int(rng.integers(0, h - c + 1))
        x = int(rng.integers(0, w - c + 1))
        hflip = bool(rng.random() < 0.5)
        vflip = bool(rng.random() < 0.5)
        k = int(rng.integers(0, 4))
        sl = (slice(None), slice(y, y + c), slice(x, x + c))
        ir, vis, roi, mask = ir[sl], vis[sl], roi[sl], mask[sl]
        boxes = crop_boxes(boxes, x, y, c, c)
        if self.cfg.hflip and hflip:
            ir, vis, roi, mask = (t.flip(-1) for t in (ir, vis, roi, mask))
            boxes = flip_boxes(boxes, c, c, horizontal=True)
        if self.cfg.vflip and vflip:
            ir, vis, roi, mask = (t.flip(-2) for t in (ir, vis, roi, mask))
            boxes = flip_boxes(boxes, c, c, horizontal=False)
        if self.cfg.rot90 and k:
            ir, vis, roi, mask = (torch.rot90(t, k, dims=(-2, -1)) for t in (ir, vis, roi, mask))
            boxes = rot90_boxes(boxes, c, c, k)
        return ir, vis, roi, mask, boxes


class ConcatPairs(Dataset):
    """Several :class:`PairedDataset` folders as one training set (``--data A --data B``).

    Index ``i`` runs through the first folder's pairs, then the second's, ...; a sample's name is
    prefixed with its folder's name (``msrs/00012N``) so names stay unique. Each folder keeps its
    own label sources (one may have boxes, another masks or none).
    """

    def __init__(self, parts: Sequence[PairedDataset]) -> None:
        if not parts:
            raise DatasetError("no training data")
        self.parts = list(parts)
        self.train = self.parts[0].train
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.sizes = [s for p in self.parts for s in p.sizes]
        self.labels = _JoinedLabels([p.labels for p in self.parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"pair index {i} outside [0, {len(self)})")
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        return k, i - int(self._starts[k])

    def _prefix(self, k: int) -> str:
        return self.parts[k].scan.ir_dir.parent.name

    def names(self) -> list[str]:
        return [f"{self._prefix(k)}/{n}" for k, p in enumerate(self.parts) for n in p.names()]

    def summary(self) -> str:
        return f"{len(self)} pairs from {len(self.parts)} folders: " + "; ".join(p.summary() for p in self.parts)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        i, seed = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), None)
        k, j = self._locate(i)
        item = self.parts[k][(j, seed) if seed is not None else j]
        item["name"] = f"{self._prefix(k)}/{item['name']}"
        return item


class _JoinedLabels:
    """What :meth:`describe` of several folders' label sources says."""

    def __init__(self, sources) -> None:
        self.sources = list(sources)

    def describe(self) -> str:
        return "; ".join(src.describe() for src in self.sources)


def training_pairs(config: DataConfig, train: bool = True, progress: bool = False) -> PairedDataset | ConcatPairs:
    """The training set a :class:`DataConfig` names: ``path`` (or ``ir_dir``/``vis_dir``) and every ``more`` folder.

    Every folder is checked before anything is returned; the problems of all of them are reported
    together in one :class:`DatasetError`.
    """
    first = None
    problems: list[str] = []
    try:
        first = PairedDataset(config=config, train=train, progress=progress)
    except DatasetError as exc:
        problems.append(str(exc))
    parts = [first]
    for folder in config.more:
        try:
            parts.append(PairedDataset(folder, config, train=train, progress=progress))
        except DatasetError as exc:
            problems.append(str(exc) if str(folder) in str(exc) else f"'{folder}': {exc}")
    if problems:
        raise DatasetError("\n".join(problems))
    return first if len(parts) == 1 else ConcatPairs(parts)


def _pad_reflect(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (C, H, W) at the bottom/right to (C, height, width) by reflection, in rounds (replicating 1-pixel sides)."""
    x = img[None]
    while x.shape[-2] < height or x.shape[-1] < width:
        hh, ww = x.shape[-2:]
        ph, pw = min(max(height - hh, 0), hh - 1), min(max(width - ww, 0), ww - 1)
        if (height > hh and ph == 0) or (width > ww and pw == 0):
            x = torch.nn.functional.pad(x, (0, max(width - ww, 0), 0, max(height - hh, 0)), mode="replicate")
        else:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
    return x[0]


def collate_pairs(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack dataset samples into the batch dict of the training contract (see the module docstring)."""
    if not samples:
        raise ValueError("collate_pairs: empty batch")
    shapes = {tuple(s["ir"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"collate_pairs: samples differ in size {sorted(shapes)}; batch whole images one at a time")
    out: dict[str, Any] = {k: torch.stack([s[k] for s in samples]) for k in ("ir", "vis", "roi", "mask")}
    out["boxes"] = [s["boxes"] for s in samples]
    out["has_boxes"] = torch.tensor([bool(s["has_boxes"]) for s in samples])
    out["has_mask"] = torch.tensor([bool(s["has_mask"]) for s in samples])
    out["name"] = [s["name"] for s in samples]
    return out


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


class PairSampler(DistributedSampler):
    """Seeded, resumable, shardable sampler yielding ``(index, sample_seed)``.

    Each epoch shuffles the indices with ``seed + epoch`` (like :class:`DistributedSampler`) and
    wraps the permutation around so that every process gets a whole number of batches
    (``steps_per_epoch = ceil(N / (batch_size * world_size))``); process ``rank`` takes positions
    ``rank, rank + world_size, ...``. :meth:`set_start` skips the first batches of the epoch,
    which is how a resumed run continues mid-epoch without reading the skipped images.

    Args:
        dataset: the dataset (only its length is used).
        batch_size: samples per step per process.
        num_replicas, rank: the process group (default: one process).
        seed: the run's seed.
        shuffle: shuffle each epoch.
    """

    def __init__(
        self, dataset, batch_size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True
    ):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.batch_size = int(batch_size)
        n = len(dataset)
        self.steps_per_epoch = max(1, math.ceil(n / (self.batch_size * self.num_replicas)))
        self.num_samples = self.steps_per_epoch * self.batch_size
        self.total_size = self.num_samples * self.num_replicas
        self.start_batch = 0

    def set_start(self, batch: int) -> None:
        """Begin the current epoch at this batch (0 <= batch < steps_per_epoch)."""
        if not 0 <= batch < self.steps_per_epoch:
            raise ValueError(f"start batch {batch} outside [0, {self.steps_per_epoch})")
        self.start_batch = int(batch)

    def _positions(self) -> list[tuple[int, int]]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            perm = torch.randperm(n, generator=g).tolist()
        else:
            perm = list(range(n))
        reps = math.ceil(self.total_size / n)
        full = (perm * reps)[: self.total_size]
        pos = list(range(self.rank, self.total_size, self.num_replicas))
        return [(full[p], p) for p in pos]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        items = self._positions()[self.start_batch * self.batch_size :]
        for idx, p in items:
            yield idx, sample_seed(self.seed, self.epoch, p)

    def __len__(self) -> int:
        return self.num_samples - self.start_batch * self.batch_size
