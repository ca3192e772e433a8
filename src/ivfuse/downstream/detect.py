"""Detection as a downstream test of fusion (PoMAI Table 4): one detector per input, same schedule and seed.

For every input (visible, infrared, each fused method) a YOLO dataset is built from the same
labelled pairs (:mod:`ivfuse.downstream.inputs`, :mod:`ivfuse.downstream.dataset`), the same
detector is trained from the same start on the train split with each seed, and the last weights
are evaluated on the test split by the detector's own validator: mAP@0.5 and mAP@[.5:.95] (the
precision envelope integrated over 101 recall points; IoU thresholds 0.50:0.05:0.95), per class
and over the classes present in the test split. The test split never selects weights: the
in-training validation runs on a few train images and its result is not used.

The detector is Ultralytics YOLO (the ``detect`` extra; AGPL-3.0), built from a model yaml
(from scratch) or from weights the user gives. It runs offline: no weights, fonts or datasets
are fetched, no package is installed or checked (``YOLO_OFFLINE``, ``YOLO_AUTOINSTALL=false``,
``plots=False``, ``amp=False``, the dataset check's font download disabled).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

from .dataset import build_yolo_dataset
from .inputs import SPLITS, InputSpec, prepare_inputs
from .report import METRICS, aggregate
from .runs import TaskResult, check_output, kept_run, needs_module, run_key, save_run, torch_device, write_outputs

__all__ = ["DetectSettings", "DetectResult", "run_detection", "train_and_evaluate"]


@dataclass
class DetectSettings:
    """The detector and its schedule, the same for every input.

    Attributes:
        model_yaml: the architecture (an Ultralytics model yaml, e.g. ``yolov8n.yaml``), trained from scratch.
        weights: a ``.pt`` file to start from instead (no download: it must exist).
        epochs, imgsz, batch: the schedule (input side in pixels, a multiple of 32).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        threads: CPU threads for training and evaluation (default: torch's current setting).
    """

    model_yaml: str = "yolov8n.yaml"
    weights: str | None = None
    epochs: int = 10
    imgsz: int = 320
    batch: int = 16
    device: str = "auto"
    threads: int | None = None

    def check(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {self.epochs}")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"--imgsz must be a multiple of 32 of at least 32, got {self.imgsz}")
        if self.batch < 1:
            raise ValueError(f"--batch must be at least 1, got {self.batch}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise ValueError(f"'{self.weights}': weights file not found (--weights; nothing is downloaded)")


@dataclass
class DetectResult(TaskResult):
    """Every run and the table over the seeds (see :class:`~ivfuse.downstream.runs.TaskResult`); a run's metrics
    are ``map50``/``map`` ``{class or "all": value in [0, 1]}``."""


def _device(name: str) -> str:
    """``auto``/``cpu``/``cuda``/``cuda:N`` -> Ultralytics' device string (``cpu``, ``0``, ``N``)."""
    dev = torch_device(name)
    return dev if dev == "cpu" else dev.partition(":")[2]


def _ultralytics(config_dir: Path, threads: int, quiet: bool = False):
    """Import Ultralytics set up to run offline, on ``threads`` CPU threads."""
    os.environ["YOLO_OFFLINE"] = "1"  # is_online() -> False: no update check, no analytics, no downloads
    os.environ["YOLO_AUTOINSTALL"] = "false"  # never pip-install a missing requirement
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))  # its settings.json, not the user's home
    from .._extras import require

    require("ultralytics", "detect", "ivfuse downstream detect")
    import ultralytics.data.utils as data_utils
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})
    # The dataset check fetches a font for plots when none is installed; plots are off, so no font is needed.
    data_utils.check_font = lambda *args, **kwargs: None
    torch_utils.NUM_THREADS = threads  # select_device() sets torch's threads to this on the CPU
    if quiet:
        import logging

        from ultralytics.utils import LOGGER

        LOGGER.setLevel(logging.WARNING)
    from ultralytics import YOLO

    return YOLO


def _metrics(box, names: Sequence[str]) -> dict:
    """Per-class and overall mAP from a validator's box metrics (NaN for classes without test boxes)."""
    out = {"map50": {n: math.nan for n in names}, "map": {n: math.nan for n in names}}
    for k, c in enumerate(box.ap_class_index):
        out["map50"][names[int(c)]] = float(box.ap50[k])
        out["map"][names[int(c)]] = float(box.ap[k])
    out["map50"]["all"], out["map"]["all"] = float(box.map50), float(box.map)
    return out


def train_and_evaluate(data_yaml: str | os.PathLike, run_dir: str | os.PathLike, seed: int, settings: DetectSettings,
                       names: Sequence[str], config_dir: str | os.PathLike | None = None, quiet: bool = False) -> dict:
    """Train the detector on the train split of ``data_yaml`` with ``seed``; evaluate its last weights on the test
    split.

    Args:
        data_yaml: from :func:`ivfuse.downstream.dataset.build_yolo_dataset`.
        run_dir: Ultralytics' run folder (weights, args); files of an earlier run there are overwritten.
        seed: the seed of initialisation, sampling and augmentation.
        settings: the detector and schedule.
        names: class names, id order.
        config_dir: Ultralytics' settings folder (default: next to ``run_dir``).
        quiet: only the detector's warnings, no progress.

    Returns:
        ``{"seed", "map50": {class/"all": v}, "map": {...}, "cpu_s", "wall_s", "threads", "device"}``.
    """
    import torch

    run = Path(run_dir)
    threads = settings.threads or torch.get_num_threads()
    YOLO = _ultralytics(Path(config_dir) if config_dir else run.parent / "ultralytics_config", threads, quiet)
    torch.set_num_threads(threads)
    device = _device(settings.device)
    t0, c0 = time.perf_counter(), time.process_time()
    model = YOLO(settings.weights or settings.model_yaml, task="detect")
    common = dict(imgsz=settings.imgsz, batch=settings.batch, device=device, workers=0, plots=False, verbose=False)
    model.train(data=str(data_yaml), epochs=settings.epochs, seed=seed, deterministic=True, amp=False,
                pretrained=False, project=str(run.parent.resolve()), name=run.name, exist_ok=True, val=False,
                **common)
    last = Path(model.trainer.last)
    if not last.is_file():
        raise OSError(f"'{last}': training wrote no weights")
    trained = YOLO(str(last), task="detect")
    res = trained.val(data=str(data_yaml), split="test", project=str(run.parent.resolve()), name=run.name + "_test",
                      exist_ok=True, **common)
    out = {"seed": seed, **_metrics(res.box, names)}
    out.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0, threads=threads,
               device=device, weights=str(last))
    return out


def run_detection(train: str | os.PathLike, test: str | os.PathLike, inputs: Sequence[InputSpec],
                  out: str | os.PathLike, settings: DetectSettings | None = None, seeds: Sequence[int] = (0,),
                  names: Sequence[str] | None = None, resume: bool = False, progress: bool = True,
                  log: Callable[[str], None] | None = None) -> DetectResult:
    """Build every input's dataset, train and evaluate once per seed, write the tables and the chart.

    Args:
        train, test: dataset folders (``ir/``, ``vi/``, ``labels/`` of YOLO txt files).
        inputs: the rows (see :func:`ivfuse.downstream.inputs.parse_fused`, :func:`parse_sources`).
        out: output folder: ``datasets/``, ``fused/``, ``runs/``, ``detect.{md,csv,json,tex}``,
            ``detect_per_class.png``.
        settings: the detector and schedule (default :class:`DetectSettings`).
        seeds: one training per seed and input.
        names: class names (default: ``labels/classes.txt``).
        resume: keep the results of runs finished before with the same settings and images (and
            fused images already written) instead of redoing them.
        log: called with a line per finished run (default: print).

    Returns:
        A :class:`DetectResult`.
    """
    settings = settings or DetectSettings()
    settings.check()
    if not seeds:
        raise ValueError("--seeds must be at least 1")
    say = log or print
    root = check_output(out, train, test)
    prep = prepare_inputs(train, test, inputs, root, names, progress=progress, overwrite_fused=not resume,
                          ready=needs_module("ultralytics", "detect", "ivfuse downstream detect"))
    result = DetectResult(notes=list(prep.notes), left_out=list(prep.notes))
    counts = {s: len(prep.splits[s].images) for s in SPLITS}
    test_boxes = prep.splits["test"].class_counts(len(prep.names))
    for spec in inputs:
        yaml = build_yolo_dataset(root / "datasets" / spec.name, prep.images[spec.name], prep.names)
        for seed in seeds:
            run_dir = root / "runs" / spec.name / f"seed{seed}"
            done = run_dir.parent / f"seed{seed}.json"
            key = run_key(spec, seed, settings, counts)
            old = kept_run(done, key, resume, say, f"{spec.name} seed {seed}")
            if old is not None:
                result.runs.append(old)
                continue
            r = {"input": spec.name, **train_and_evaluate(yaml, run_dir, seed, settings, prep.names,
                                                           config_dir=root / "ultralytics_config", quiet=not progress)}
            save_run(done, key, r)
            result.runs.append(r)
            say(f"{spec.name} seed {seed}: mAP@0.5 {100 * r['map50']['all']:.1f} %, mAP@[.5:.95] "
                f"{100 * r['map']['all']:.1f} % ({r['cpu_s']:.0f} s CPU, {r['wall_s']:.0f} s wall)")
    columns = list(prep.names) + ["all"]
    result.table = aggregate(result.runs, [s.name for s in inputs], columns)
    absent = [n for n, c in zip(prep.names, test_boxes) if c == 0]
    notes = list(result.notes)
    if absent:
        notes.append(f"no test boxes of {', '.join(absent)}: n/a, and 'all' averages the other classes")
    extra = {"settings": asdict(settings), "seeds": list(seeds), "images": counts,
             "test_boxes": dict(zip(prep.names, test_boxes)), "train": str(train), "test": str(test),
             "inputs": [asdict(s) for s in inputs],
             "cpu_s": sum(r["cpu_s"] for r in result.runs), "python": sys.version.split()[0]}
    write_outputs(result, root, "detect", notes, extra, METRICS, "Detection mAP per input", "map50")
    return result
