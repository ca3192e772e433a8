"""Label files: YOLO/VOC/COCO box parsers, mask images, and where a dataset keeps them.

All box readers return float32 arrays (N, 4) of ``x0, y0, x1, y1`` in pixels, ``x1``/``y1``
exclusive.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import IMAGE_EXTENSIONS, read_array
from .boxes import empty_boxes
from .config import DatasetError

__all__ = [
    "LabelSources",
    "find_label_sources",
    "read_boxes",
    "read_coco",
    "read_mask",
    "read_pair_mask",
    "read_voc",
    "read_yolo",
]

_MASK_DIRS = ("masks", "mask", "label", "labels", "segmentation_labels", "segmentation", "seg")
_BOX_DIRS_YOLO = ("labels", "label", "yolo", "labels_yolo")
_BOX_DIRS_VOC = ("annotations", "annotation", "xml", "voc")


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
        return empty_boxes()
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
        return empty_boxes()
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
        return empty_boxes(), False
    if fmt == "coco":
        if labels.coco is None:
            labels.coco = read_coco(path)
        coco = labels.coco
        for key in (name, Path(name).name):
            if key in coco:
                return coco[key], True
        return empty_boxes(), False
    ext = ".txt" if fmt == "yolo" else ".xml"
    f = _find_by_name(path, name, (ext,))
    if f is None:
        return empty_boxes(), False
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

