"""The inputs of a downstream comparison: visible, infrared, fused folders and models fused on the fly.

Pure Python apart from the fusion of a model input (:func:`ivfuse.api.fuse_folder`). Every input
gets the same labelled pairs: a pair without a label file, or without an image for some input,
is left out of all of them and reported.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .._files import FUSED_MARKER
from ..models.registry import model_identity
from .dataset import DetectionSplit, LabelledImage, fused_image, scan_split

__all__ = ["InputSpec", "PreparedInputs", "check_inputs", "match_inputs", "parse_fused", "parse_sources",
           "prepare_inputs"]

SPLITS = ("train", "test")
_SOURCES = {"vis": "visible", "vi": "visible", "visible": "visible", "ir": "infrared", "infrared": "infrared"}


@dataclass(frozen=True)
class InputSpec:
    """One row of the comparison.

    Attributes:
        name: the row's name (``visible``, ``infrared`` or the fused method's name).
        kind: ``"vis"``, ``"ir"``, ``"folder"`` (fused images on disk) or ``"model"`` (fused here).
        target: the folder or the model name ('' for the sources).
    """

    name: str
    kind: str
    target: str = ""


def parse_sources(text: str) -> list[InputSpec]:
    """``"vis,ir"`` -> the visible and infrared rows; ``""`` -> none."""
    out = []
    for tok in (t.strip().lower() for t in text.split(",")):
        if not tok:
            continue
        if tok not in _SOURCES:
            raise ValueError(f"--sources: unknown source '{tok}'; use vis and/or ir")
        kind = "vis" if _SOURCES[tok] == "visible" else "ir"
        if all(s.kind != kind for s in out):
            out.append(InputSpec(_SOURCES[tok], kind))
    return out


def _is_model(name: str) -> bool:
    from ..models import list_models

    return name in list_models()


def parse_fused(spec: str) -> InputSpec:
    """``NAME=DIR``, ``NAME=MODEL``, ``DIR`` or ``MODEL`` -> an input.

    A folder holds the fused images of both splits: in ``train/`` and ``test/`` subfolders, or
    all in one folder (found by the pair names). A model is a registered ivfuse model with weights;
    its images are fused on the fly.

    Raises:
        ValueError: the value is neither an existing folder nor a model with weights.
    """
    name, sep, value = spec.partition("=")
    if not sep:
        name, value = Path(spec.rstrip("/\\")).name or spec, spec
    name, value = name.strip(), value.strip()
    if not name or not value:
        raise ValueError(f"--fused '{spec}': expected NAME=DIR or NAME=MODEL")
    if Path(value).is_dir():
        return InputSpec(name, "folder", value)
    if _is_model(value):
        from ..models import get_model_entry

        entry = get_model_entry(value)
        if entry.trainable and entry.weights_status() != "available":
            raise ValueError(f"--fused {spec}: no weights ship for the model '{value}'; fuse the images with "
                             f"ivfuse fuse --checkpoint FILE and pass the folder")
        return InputSpec(name, "model", value)
    raise ValueError(f"--fused {spec}: '{value}' is neither a folder nor a registered model (see `ivfuse models`)")


@dataclass
class PreparedInputs:
    """What every input shows for every labelled pair.

    Attributes:
        splits: ``{"train": split, "test": split}`` (the labelled pairs kept): a
            :class:`~ivfuse.downstream.dataset.DetectionSplit` or, for segmentation, a
            :class:`~ivfuse.downstream.masks.SegmentationSplit`.
        names: the class names.
        images: ``{input name: {split: [(item, image path), ...]}}``, the same items for every input.
        notes: one line per thing left out (images without labels or without a fused image, pairs
            a model failed to fuse).
    """

    splits: dict[str, DetectionSplit | Any]
    names: list[str]
    images: dict[str, dict[str, list[tuple[LabelledImage | Any, Path]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _listing(paths: Sequence[object], limit: int = 5) -> str:
    shown = ", ".join(f"'{p}'" for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _fused_folder(spec: InputSpec, split: str, root: Path, out: Path, progress: bool, overwrite: bool,
                  notes: list[str]) -> Path:
    if spec.kind == "folder":
        sub = Path(spec.target) / split
        return sub if sub.is_dir() else Path(spec.target)
    from .._files import atomic_write
    from ..api import fuse_folder

    dest = out / "fused" / spec.name / split
    ident = {"model": spec.target, "weights": model_identity(spec.target)}
    marker = dest / FUSED_MARKER
    if dest.is_dir() and any(dest.iterdir()):
        try:
            same = json.loads(marker.read_text()) == ident
        except (OSError, ValueError):
            same = False
        if not same:  # images of other (or unknown) weights: fuse them all again
            notes.append(f"{spec.name}: the images in {dest} were not made by the current weights of "
                         f"'{spec.target}'; fused again")
            overwrite = True
    res = fuse_folder(root, dest, model=spec.target, progress=progress, overwrite=overwrite)
    for name, err in res.failed:
        notes.append(f"{spec.name}: pair '{name}' of {root} could not be fused ({err}); left out")
    atomic_write(marker, json.dumps(ident) + "\n")
    return dest


def check_inputs(train: str | os.PathLike, test: str | os.PathLike, inputs: Sequence[InputSpec]) -> dict[str, Path]:
    """Check the rows (at least one, unique names) and the splits (two different folders).

    Returns:
        ``{"train": Path, "test": Path}``.

    Raises:
        ValueError: no input, two inputs of one name, or the same folder for both splits.
    """
    if not inputs:
        raise ValueError("nothing to compare: give --sources and/or --fused")
    seen = set()
    for spec in inputs:
        if spec.name in seen:
            raise ValueError(f"two inputs are named '{spec.name}'; name them with --fused NAME=...")
        seen.add(spec.name)
    roots = {"train": Path(train), "test": Path(test)}
    if roots["train"].resolve() == roots["test"].resolve():
        raise ValueError(f"'{train}': the train and test splits are the same folder")
    return roots


def match_inputs(splits: dict, roots: dict[str, Path], inputs: Sequence[InputSpec], out: str | os.PathLike,
                 names: Sequence[str], progress: bool = True, overwrite_fused: bool = True,
                 warn: Callable[[str], None] | None = None, ready: Callable[[], None] | None = None) -> PreparedInputs:
    """Report the unlabelled images, fuse the model inputs, and give every input the same labelled pairs.

    Shared by the downstream tasks: a split is any object with ``images`` (labelled items with
    ``name`` and ``pair``), ``missing_labels`` (image paths) and ``label_dir``; its ``images`` are
    cut down to the pairs every input has an image for.

    Args:
        splits: ``{"train": split, "test": split}``, already scanned and checked.
        roots: the dataset folders of the splits (from :func:`check_inputs`).
        inputs: the rows.
        out: the output folder; model inputs are fused into ``out/fused/<name>/<split>/``.
        names: the class names.
        progress, overwrite_fused, warn, ready: as in :func:`prepare_inputs`.

    Raises:
        ValueError: a split has no usable image.
    """
    say = warn or (lambda msg: print(f"ivfuse: warning: {msg}", file=sys.stderr))
    prep = PreparedInputs(splits=splits, names=list(names))
    for split in SPLITS:
        missing = splits[split].missing_labels
        if missing:
            prep.notes.append(f"{split}: {len(missing)} image(s) without a label file in "
                              f"'{splits[split].label_dir}', left out: {_listing(missing)}")
            say(prep.notes[-1])
    for split in SPLITS:
        if not splits[split].images:
            raise ValueError(f"'{roots[split]}': empty {split} split: no image has a label file in "
                             f"'{splits[split].label_dir}'")
    if ready is not None:
        ready()
    out = Path(out)
    for split in SPLITS:
        folders = {}
        for spec in inputs:
            if spec.kind in ("folder", "model"):
                folders[spec.name] = _fused_folder(spec, split, roots[split], out, progress, overwrite_fused,
                                                   prep.notes)
        kept, lost = [], []
        per_input: dict[str, list[tuple[Any, Path]]] = {s.name: [] for s in inputs}
        for item in splits[split].images:
            paths = {}
            for spec in inputs:
                if spec.kind == "vis":
                    paths[spec.name] = item.pair.vis
                elif spec.kind == "ir":
                    paths[spec.name] = item.pair.ir
                else:
                    paths[spec.name] = fused_image(folders[spec.name], item.name)
            absent = [n for n, p in paths.items() if p is None]
            if absent:
                lost.append(f"{item.name} ({', '.join(absent)})")
                continue
            kept.append(item)
            for n, p in paths.items():
                per_input[n].append((item, p))
        if lost:
            prep.notes.append(f"{split}: {len(lost)} pair(s) without a fused image for some input, left out of every "
                              f"input: {_listing(lost)}")
            say(prep.notes[-1])
        if not kept:
            raise ValueError(f"'{roots[split]}': empty {split} split: no labelled pair has an image for every input")
        splits[split].images = kept
        for n, items in per_input.items():
            prep.images.setdefault(n, {})[split] = items
    return prep


def prepare_inputs(train: str | os.PathLike, test: str | os.PathLike, inputs: Sequence[InputSpec],
                   out: str | os.PathLike, names: Sequence[str] | None = None, progress: bool = True,
                   overwrite_fused: bool = True, warn: Callable[[str], None] | None = None,
                   ready: Callable[[], None] | None = None) -> PreparedInputs:
    """Scan and check both splits, fuse the model inputs, and match every input's images.

    Args:
        train, test: dataset folders (``ir/``, ``vi/``, ``labels/`` of YOLO txt files).
        inputs: the rows (at least one).
        out: the output folder; model inputs are fused into ``out/fused/<name>/<split>/``.
        names: class names (default: ``labels/classes.txt`` of the train split).
        overwrite_fused: fuse again over images a previous run left (False: keep them).
        warn: called with each note as it is found (default: print to stderr).
        ready: called once the labels are checked, before any fusion (e.g. to check that the
            detector is installed before minutes of fusing).

    Raises:
        ValueError: a label file is malformed (class id out of range, box outside the image, ...),
            the splits disagree on the classes, or a split has no usable image.
    """
    roots = check_inputs(train, test, inputs)
    splits, cls = {}, list(names) if names else None
    for split in SPLITS:
        splits[split], found = scan_split(roots[split], cls)
        if cls is None:
            cls = found
        elif found != cls:
            raise ValueError(f"'{splits[split].label_dir}': classes {found} differ from the train split's {cls}")
    return match_inputs(splits, roots, inputs, out, cls, progress=progress, overwrite_fused=overwrite_fused,
                        warn=warn, ready=ready)
