"""Downstream tasks on fused images: detection and segmentation trained and evaluated per input.

``ivfuse downstream detect`` and ``ivfuse downstream segment``. The dataset building and label
checking (:mod:`.dataset`, :mod:`.masks`, :mod:`.inputs`) and the tables (:mod:`.report`) are
pure Python; the detector (:mod:`.detect`) needs the ``detect`` extra (Ultralytics, AGPL-3.0),
the segmentation network (:mod:`.segnet`, run by :mod:`.segment`) the ``segment`` extra
(torchvision), each imported only when a network is trained.
"""

from .dataset import build_yolo_dataset, check_yolo_labels, class_names, scan_split
from .inputs import InputSpec, parse_fused, parse_sources, prepare_inputs
from .masks import confusion_matrix, read_class_mask, scan_mask_split, scores_from_confusion
from .segment import SegmentSettings, prepare_segmentation, run_segmentation

__all__ = [
    "InputSpec",
    "SegmentSettings",
    "build_yolo_dataset",
    "check_yolo_labels",
    "class_names",
    "confusion_matrix",
    "parse_fused",
    "parse_sources",
    "prepare_inputs",
    "prepare_segmentation",
    "read_class_mask",
    "run_segmentation",
    "scan_mask_split",
    "scan_split",
    "scores_from_confusion",
]
