"""Downstream tasks on fused images: detection trained and evaluated per input (``ivfuse downstream detect``).

The dataset building and label checking (:mod:`.dataset`, :mod:`.inputs`) and the tables
(:mod:`.report`) are pure Python; the detector (:mod:`.detect`) needs the ``detect`` extra
(Ultralytics, AGPL-3.0), imported only when a detector is trained.
"""

from .dataset import build_yolo_dataset, check_yolo_labels, class_names, scan_split
from .inputs import InputSpec, parse_fused, parse_sources, prepare_inputs

__all__ = [
    "InputSpec",
    "build_yolo_dataset",
    "check_yolo_labels",
    "class_names",
    "parse_fused",
    "parse_sources",
    "prepare_inputs",
    "scan_split",
]
