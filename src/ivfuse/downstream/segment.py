"""Segmentation as a downstream test of fusion: one network per input, same schedule and seed; IoU per class, mIoU.

For every input (visible, infrared, each fused method) the same pairs with a class-index mask
are used (:mod:`ivfuse.downstream.inputs`, :mod:`ivfuse.downstream.masks`); the same torchvision
network is trained from the same initialisation on the train split with each seed
(:mod:`ivfuse.downstream.segnet`), and its last weights are scored on the test split: one
confusion matrix over all test pixels, IoU and accuracy per class, mIoU, mean accuracy and pixel
accuracy. The test split never selects anything.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from .inputs import SPLITS, InputSpec, PreparedInputs, check_inputs, match_inputs
from .masks import IGNORE_INDEX, check_class_range, scan_mask_split, segment_class_names
from .report import SEGMENT_METRICS, aggregate
from .runs import TaskResult, check_output, kept_run, needs_module, run_key, save_run, torch_device, write_outputs

__all__ = ["SegmentResult", "SegmentSettings", "prepare_segmentation", "run_segmentation"]


@dataclass
class SegmentSettings:
    """The network and its schedule, the same for every input.

    Attributes:
        arch: a torchvision segmentation network (:data:`ivfuse.downstream.segnet.ARCHS`).
        weights: a state dict to start from (``.safetensors`` or a torch file; no download: it must exist).
        epochs, batch, lr: the schedule (AdamW, poly decay).
        imgsz: the network input's longer side in pixels, a multiple of 32.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        threads: CPU threads (default: torch's current setting).
    """

    arch: str = "lraspp_mobilenet_v3_large"
    weights: str | None = None
    epochs: int = 10
    imgsz: int = 320
    batch: int = 8
    lr: float = 1e-3
    device: str = "auto"
    threads: int | None = None

    def check(self) -> None:
        from .segnet import ARCHS

        if self.arch not in ARCHS:
            raise ValueError(f"--arch must be one of {', '.join(ARCHS)}, got '{self.arch}'")
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {self.epochs}")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"--imgsz must be a multiple of 32 of at least 32, got {self.imgsz}")
        if self.batch < 2:
            raise ValueError(f"--batch must be at least 2 (batch norm), got {self.batch}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise ValueError(f"'{self.weights}': weights file not found (--weights; nothing is downloaded)")


@dataclass
class SegmentResult(TaskResult):
    """Every run and the table over the seeds (see :class:`~ivfuse.downstream.runs.TaskResult`); a run's metrics
    are ``iou``/``acc`` ``{class or "mean": value in [0, 1]}``, with ``pixel_acc`` beside them."""


def prepare_segmentation(train: str | os.PathLike, test: str | os.PathLike, inputs: Sequence[InputSpec],
                         out: str | os.PathLike, names: Sequence[str] | None = None, num_classes: int | None = None,
                         progress: bool = True, overwrite_fused: bool = True,
                         warn: Callable[[str], None] | None = None,
                         ready: Callable[[], None] | None = None) -> PreparedInputs:
    """Scan and check the masks of both splits, fuse the model inputs, and match every input's images.

    Args:
        train, test, inputs, out, names, num_classes: as in :func:`run_segmentation`.
        progress, overwrite_fused, warn, ready: as in :func:`ivfuse.downstream.inputs.prepare_inputs`.

    Returns:
        The inputs' images of the same pairs; ``names`` holds the class names (their number is the class count).

    Raises:
        ValueError: a mask of another size than its pair, a class id out of range, an unreadable mask, a
            split without a mask folder or without any pair that has a mask (one line naming the file).
    """
    if num_classes is not None and not 2 <= num_classes <= IGNORE_INDEX:
        raise ValueError(f"--num-classes must be in 2..{IGNORE_INDEX}, got {num_classes}")
    roots = check_inputs(train, test, inputs)
    splits = {s: scan_mask_split(roots[s]) for s in SPLITS}
    inferred = max(splits[s].max_class() for s in SPLITS) + 1
    cls = segment_class_names(splits["train"].label_dir, num_classes, names, inferred)
    check_class_range([splits[s] for s in SPLITS], len(cls))
    return match_inputs(splits, roots, inputs, out, cls, progress=progress, overwrite_fused=overwrite_fused,
                        warn=warn, ready=ready)


def run_segmentation(train: str | os.PathLike, test: str | os.PathLike, inputs: Sequence[InputSpec],
                     out: str | os.PathLike, settings: SegmentSettings | None = None, seeds: Sequence[int] = (0,),
                     names: Sequence[str] | None = None, num_classes: int | None = None, resume: bool = False,
                     progress: bool = True, save_weights: bool = False,
                     log: Callable[[str], None] | None = None) -> SegmentResult:
    """Train and score the network once per input and seed; write the tables and the per-class chart.

    Args:
        train, test: dataset folders (``ir/``, ``vi/`` and a mask folder: ``labels/``, ``masks/``,
            ``Segmentation_labels/``, ... of class-index images).
        inputs: the rows (see :func:`ivfuse.downstream.inputs.parse_fused`, :func:`parse_sources`).
        out: output folder: ``fused/``, ``runs/``, ``segment.{md,csv,json,tex}``, ``segment_per_class.png``.
        settings: the network and schedule (default :class:`SegmentSettings`).
        seeds: one training per seed and input.
        names: class names (default: the mask folder's ``classes.txt``, else ``0``, ``1``, ...).
        num_classes: the number of classes (default: from the names, else the largest id in the
            masks of both splits plus one; 255 is the ignore index).
        resume: keep runs finished before with the same settings and images (and fused images).
        progress: progress of fusing and of the epochs.
        save_weights: also write each trained network to ``runs/<input>/seed<K>.safetensors``.
        log: called with a line per finished run (default: print).

    Raises:
        ValueError: unusable input (a mask of another size than its image, a class id out of range,
            an empty split, ...), with one line naming the file.
    """
    settings = settings or SegmentSettings()
    settings.check()
    if not seeds:
        raise ValueError("--seeds must be at least 1")
    say = log or print
    device = torch_device(settings.device)  # before minutes of fusing
    root = check_output(out, train, test)
    prep = prepare_segmentation(train, test, inputs, root, names, num_classes, progress=progress,
                                overwrite_fused=not resume,
                                ready=needs_module("torchvision", "segment", "ivfuse downstream segment"))
    cls = prep.names
    import torch

    from .segnet import train_and_evaluate

    if settings.threads:
        torch.set_num_threads(settings.threads)
    result = SegmentResult(notes=list(prep.notes), left_out=list(prep.notes))
    counts = {s: len(prep.splits[s].images) for s in SPLITS}
    test_pixels = prep.splits["test"].class_pixels(len(cls))
    for spec in inputs:
        for seed in seeds:
            done = root / "runs" / spec.name / f"seed{seed}.json"
            key = run_key(spec, seed, settings, counts)
            old = kept_run(done, key, resume, say, f"{spec.name} seed {seed}")
            if old is not None:
                result.runs.append(old)
                continue
            epochs = (lambda line, n=spec.name, k=seed: print(f"{n} seed {k}: {line}", file=sys.stderr)) \
                if progress else None
            r = train_and_evaluate(prep.images[spec.name]["train"], prep.images[spec.name]["test"], cls, seed,
                                   settings, device, progress=epochs)
            state = r.pop("state")
            if save_weights:
                from safetensors.torch import save_file

                weights = done.with_suffix(".safetensors")
                weights.parent.mkdir(parents=True, exist_ok=True)
                tmp = weights.with_name(weights.name + ".part")
                save_file(state, str(tmp))
                os.replace(tmp, weights)
                r["weights"] = str(weights)
            r = {"input": spec.name, **r}
            save_run(done, key, r)
            result.runs.append(r)
            say(f"{spec.name} seed {seed}: mIoU {100 * r['iou']['mean']:.1f} %, pixel accuracy "
                f"{100 * r['pixel_acc']:.1f} % ({r['cpu_s']:.0f} s CPU, {r['wall_s']:.0f} s wall)")
    columns = list(cls) + ["mean"]
    result.table = aggregate(result.runs, [s.name for s in inputs], columns, SEGMENT_METRICS)
    notes = list(result.notes)
    absent = [n for n, c in zip(cls, test_pixels) if c == 0]
    if absent:
        notes.append(f"no test pixels of {', '.join(absent)}: its IoU is 0 where the network predicts it, n/a where "
                     f"not, and its accuracy n/a")
    notes.append("mean: over the classes (mIoU, mean accuracy); one confusion matrix over all test pixels, "
                 f"{IGNORE_INDEX} ignored")
    extra = {"settings": asdict(settings), "seeds": list(seeds), "images": counts, "classes": list(cls),
             "test_pixels": dict(zip(cls, map(int, test_pixels))), "train": str(train), "test": str(test),
             "inputs": [asdict(s) for s in inputs], "ignore_index": IGNORE_INDEX,
             "cpu_s": sum(r["cpu_s"] for r in result.runs), "python": sys.version.split()[0]}
    write_outputs(result, root, "segment", notes, extra, SEGMENT_METRICS, "Segmentation IoU per input", "iou")
    return result
