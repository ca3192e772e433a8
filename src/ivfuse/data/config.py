"""Configuration of the training data (:class:`DataConfig`, :class:`PseudoLabelConfig`) and its error type."""

from __future__ import annotations

from dataclasses import dataclass, field

from .boxes import DegradeBoxes

__all__ = ["DataConfig", "DatasetError", "PseudoLabelConfig"]


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
        degrade: weaker boxes for the weak-label study (a fraction of the images unlabelled, boxes
            jittered), applied to training samples only; see :class:`ivfuse.data.DegradeBoxes`.
            Off by default. Set as ``data.degrade.keep`` / ``.jitter`` / ``.seed``.
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
    degrade: DegradeBoxes = field(default_factory=DegradeBoxes)


class DatasetError(ValueError):
    """The training data cannot be used as given; the message lists the problems found."""
