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

For the weak-label study, ``DataConfig.degrade`` (:class:`DegradeBoxes`) leaves only a fraction of
the training images labelled and jitters the boxes of the others; the ROI follows the boxes.

Determinism: a sample is addressed as ``dataset[(index, sample_seed)]``; the crop position,
flips and box jitter come only from ``sample_seed``. :class:`PairSampler` derives those seeds
from ``(seed, epoch, position)``, so the data a run sees is a function of the seed and the step
(and a resumed run sees the same data as an uninterrupted one).

Modules: :mod:`~ivfuse.data.config` (settings), :mod:`~ivfuse.data.labels` (label files and
their discovery), :mod:`~ivfuse.data.boxes` (box geometry and degradation),
:mod:`~ivfuse.data.pseudo` (pseudo-labels), :mod:`~ivfuse.data.datasets` (datasets, batching),
:mod:`~ivfuse.data.sampler` (sampling); every public name is importable from :mod:`ivfuse.data`.
"""

from __future__ import annotations

from .boxes import (
    DegradeBoxes,
    boxes_to_mask,
    crop_boxes,
    empty_boxes,
    flip_boxes,
    jitter_boxes,
    keeps_labels,
    rot90_boxes,
)
from .config import DataConfig, DatasetError, PseudoLabelConfig
from .datasets import ConcatPairs, PairedDataset, collate_pairs, training_pairs
from .labels import (
    LabelSources,
    find_label_sources,
    read_boxes,
    read_coco,
    read_mask,
    read_pair_mask,
    read_voc,
    read_yolo,
)
from .pseudo import pseudo_labels
from .sampler import PairSampler, sample_seed

__all__ = [
    "ConcatPairs",
    "DataConfig",
    "DatasetError",
    "DegradeBoxes",
    "LabelSources",
    "PairSampler",
    "PairedDataset",
    "PseudoLabelConfig",
    "boxes_to_mask",
    "collate_pairs",
    "crop_boxes",
    "empty_boxes",
    "find_label_sources",
    "flip_boxes",
    "jitter_boxes",
    "keeps_labels",
    "pseudo_labels",
    "read_boxes",
    "read_coco",
    "read_mask",
    "read_pair_mask",
    "read_voc",
    "read_yolo",
    "rot90_boxes",
    "sample_seed",
    "training_pairs",
]
