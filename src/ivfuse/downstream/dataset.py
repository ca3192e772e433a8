"""Detection datasets in the YOLO layout, built from an ivfuse dataset folder and one input per row.

Pure Python (NumPy, Pillow): no detector is needed to build or check a dataset. One "input" is
what a detector is trained and tested on: the visible images, the infrared images, or the fused
images of one method. Every input of a comparison gets the same images (the pairs that have a
label file and an image for every input), so the rows of the table differ in the pixels only.

Layout written under ``root/<input>/``::

    images/train/<name><ext>   symbolic links to the source images (copies where links fail)
    images/test/<name><ext>
    images/val/<name><ext>     a few train images, for the detector's validation during training
    labels/train/<name>.txt    checked YOLO rows ``class cx cy w h`` (normalised to [0, 1])
    labels/test/<name>.txt
    data.yaml                  the dataset description the detector reads
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .._files import atomic_write
from ..data import DatasetError, find_label_sources, read_yolo
from ..io import IMAGE_EXTENSIONS, PairPaths, find_pairs

__all__ = [
    "DetectionSplit",
    "LabelledImage",
    "build_yolo_dataset",
    "check_yolo_labels",
    "class_names",
    "fused_image",
    "image_size",
    "scan_split",
]

#: Train images the detector validates on during training (its result is not used).
VAL_IMAGES = 8

#: A box may stick out of the image by this share of its side (rounding in the annotation tool).
BOX_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LabelledImage:
    """One pair of a split with its checked labels.

    Attributes:
        name: the pair's name (file stem, or relative path without extension).
        pair: the pair's infrared and visible paths.
        rows: (N, 5) float64 ``class, cx, cy, w, h``, coordinates normalised to [0, 1].
    """

    name: str
    pair: PairPaths
    rows: np.ndarray


@dataclass
class DetectionSplit:
    """The labelled pairs of one split (train or test) of a dataset folder.

    Attributes:
        root: the dataset folder.
        label_dir: its YOLO label folder.
        images: the pairs with a label file, sorted by name.
        missing_labels: images without a label file (left out).
    """

    root: Path
    label_dir: Path
    images: list[LabelledImage] = field(default_factory=list)
    missing_labels: list[Path] = field(default_factory=list)

    def class_counts(self, num_classes: int) -> list[int]:
        """Boxes per class over the split."""
        counts = [0] * num_classes
        for item in self.images:
            for c in item.rows[:, 0].astype(int):
                counts[c] += 1
        return counts


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError) as exc:
        raise ValueError(f"'{path}': cannot read the image size ({exc})") from exc


def check_yolo_labels(path: str | os.PathLike, width: int, height: int, num_classes: int) -> np.ndarray:
    """Read and check one YOLO label file of an image of ``width`` x ``height`` pixels.

    The rows are parsed by :func:`ivfuse.data.read_yolo` (``class cx cy w h`` or a polygon, whose
    bounding box is kept); each class must be a whole number in ``[0, num_classes)`` and each box
    must have a positive size and lie inside the image (up to :data:`BOX_TOLERANCE` of a side,
    clipped). An empty file means an image without objects.

    Args:
        path: the ``.txt`` file (must exist).
        width, height: the image size in pixels.
        num_classes: the number of classes.

    Returns:
        (N, 5) float64 ``class, cx, cy, w, h``, coordinates normalised to [0, 1].

    Raises:
        DatasetError: one line naming the file, the line and the problem.
    """
    p = Path(path)
    boxes = read_yolo(p, width, height)  # syntax errors raise here, naming file and line
    lines = []
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if text:
            lines.append((lineno, text))
    rows = np.zeros((len(lines), 5), dtype=np.float64)
    for k, ((lineno, text), box) in enumerate(zip(lines, boxes)):
        tok = text.split()[0]
        try:
            cls = float(tok)
        except ValueError:
            raise DatasetError(f"'{p}', line {lineno}: class id '{tok}' is not a number") from None
        if not cls.is_integer() or not 0 <= cls < num_classes:
            raise DatasetError(f"'{p}', line {lineno}: class id {tok} is out of range 0..{num_classes - 1}")
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0):
            raise DatasetError(f"'{p}', line {lineno}: box has no area ({text!r})")
        tx, ty = BOX_TOLERANCE * width, BOX_TOLERANCE * height
        if x0 < -tx or y0 < -ty or x1 > width + tx or y1 > height + ty:
            raise DatasetError(f"'{p}', line {lineno}: box {x0:.1f},{y0:.1f},{x1:.1f},{y1:.1f} lies outside the "
                               f"{width}x{height} image")
        x0, x1 = max(x0, 0.0), min(x1, float(width))
        y0, y1 = max(y0, 0.0), min(y1, float(height))
        rows[k] = (cls, (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height)
    return rows


def class_names(label_dir: str | os.PathLike, names: Sequence[str] | None = None) -> list[str]:
    """The class names: ``names`` if given, else the label folder's ``classes.txt``.

    ``classes.txt`` holds one class a line, either ``name`` or ``id name`` (ids 0, 1, ... in order).

    Raises:
        ValueError: neither is available, or ``classes.txt`` is malformed (message names it).
    """
    if names:
        return [str(n) for n in names]
    p = Path(label_dir) / "classes.txt"
    if not p.is_file():
        raise ValueError(f"'{label_dir}': no classes.txt; give the class names with --classes NAME,NAME,...")
    out = []
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) >= 2 and tok[0].isdigit():
            if int(tok[0]) != len(out):
                raise ValueError(f"'{p}', line {lineno}: expected class id {len(out)}, got {tok[0]}")
            tok = tok[1:]
        out.append(" ".join(tok))
    if not out:
        raise ValueError(f"'{p}': no class names")
    return out


def scan_split(root: str | os.PathLike, names: Sequence[str] | None = None) -> tuple[DetectionSplit, list[str]]:
    """The labelled pairs of a dataset folder (``ir/``, ``vi/``, ``labels/`` with YOLO txt files).

    Args:
        root: the dataset folder.
        names: the class names (default: ``labels/classes.txt``).

    Returns:
        (the split, the class names). Pairs without a label file are listed in ``missing_labels``.

    Raises:
        ValueError: no pairs, no YOLO label folder, or a label file that fails :func:`check_yolo_labels`.
    """
    r = Path(root)
    scan = find_pairs(r)
    if not scan.pairs:
        raise ValueError(f"'{r}': no infrared/visible pairs found")
    labels = find_label_sources(r, boxes="auto", masks="")
    if labels.box_format != "yolo" or labels.box_path is None:
        found = f"found {labels.box_format} annotations" if labels.box_format else "found none"
        raise ValueError(f"'{r}': detection needs a labels/ folder of YOLO .txt files ({found})")
    label_dir = labels.box_path
    cls = class_names(label_dir, names)
    split = DetectionSplit(root=r, label_dir=label_dir)
    for pp in scan.pairs:
        txt = label_dir / f"{pp.name}.txt"
        if not txt.is_file():
            split.missing_labels.append(pp.vis)
            continue
        w, h = image_size(pp.vis)
        split.images.append(LabelledImage(pp.name, pp, check_yolo_labels(txt, w, h, len(cls))))
    return split, cls


def fused_image(folder: str | os.PathLike, name: str) -> Path | None:
    """The fused image of pair ``name`` in ``folder`` (any image extension), or None."""
    f = Path(folder)
    for ext in IMAGE_EXTENSIONS:
        for e in (ext, ext.upper()):
            p = f / f"{name}{e}"
            if p.is_file():
                return p
    return None


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        dst.symlink_to(src.resolve())
    except OSError:
        tmp = dst.with_name(dst.name + ".part")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)


def _label_text(rows: np.ndarray) -> str:
    return "".join(f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in rows)


def _flat(name: str) -> str:
    return name.replace("/", "__").replace(os.sep, "__")


def build_yolo_dataset(out: str | os.PathLike, splits: Mapping[str, Sequence[tuple[LabelledImage, Path]]],
                       names: Sequence[str]) -> Path:
    """Write one input's YOLO dataset folder and return its ``data.yaml``.

    Args:
        out: the folder of this input (created; files of a previous build are replaced).
        splits: ``{"train": [(item, image path), ...], "test": [...]}``: the labelled pair and the
            image this input shows for it (visible, infrared or fused).
        names: the class names, id order.

    Returns:
        The ``data.yaml`` path. ``images/val`` holds the first :data:`VAL_IMAGES` train images, for
        the validation the detector runs during training (the test split is only used for the final
        evaluation).
    """
    root = Path(out)
    splits = dict(splits)
    # The detector validates during training; that result selects nothing, so a few train images keep it cheap.
    splits["val"] = list(splits.get("train", ()))[:VAL_IMAGES]
    for split, items in splits.items():
        img_dir, lab_dir = root / "images" / split, root / "labels" / split
        for d in (img_dir, lab_dir):
            if d.is_dir():
                shutil.rmtree(d)
        for item, image in items:
            stem = _flat(item.name)
            _link_or_copy(Path(image), img_dir / f"{stem}{Path(image).suffix.lower()}")
            atomic_write(lab_dir / f"{stem}.txt", _label_text(item.rows))
        (root / "labels").joinpath(f"{split}.cache").unlink(missing_ok=True)
    # JSON strings are valid YAML scalars, so the paths need no YAML library.
    q = json.dumps
    yaml = [f"path: {q(str(root.resolve()))}", f"train: {q('images/train')}", f"val: {q('images/val')}"]
    if "test" in splits:
        yaml.append(f"test: {q('images/test')}")
    yaml.append(f"nc: {len(names)}")
    yaml.append("names:")
    yaml += [f"  {i}: {q(n)}" for i, n in enumerate(names)]
    return atomic_write(root / "data.yaml", "\n".join(yaml) + "\n")
