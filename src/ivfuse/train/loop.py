"""The training loop: stages, checkpoints, resume, logging, validation, DDP, mixed precision.

:func:`train` runs a :class:`~ivfuse.train.config.TrainConfig` into a run folder::

    RUN_DIR/
      config.json          the resolved configuration (``ivfuse train --resume`` reads it back)
      run.json             environment, dataset summary, stage plan
      log.jsonl            one JSON object per line: {"kind": "train"|"val", "step", ...}
      checkpoints/         step_XXXXXXXX/ folders (see :mod:`ivfuse.train.checkpoint`), latest
      <model>.safetensors  final weights
      <model>.json         their weight card (:class:`ivfuse.models.WeightCard`)

Determinism: the model is initialised under ``torch.manual_seed(seed)``; the data order and
crops are functions of (seed, step) (:class:`ivfuse.data.PairSampler`); before every step the
global torch RNG is re-seeded from (seed, step, rank), so anything random inside the model
(dropout, random projections) is a function of the step too. Hence a run resumed from any
checkpoint on the same machine and device ends with the same weights, bit for bit, as an
uninterrupted one (on CPU; CUDA kernels are not all deterministic).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .checks import RunExistsError, one_line, read_json
from .config import TrainConfig, config_from_dict
from .distributed import init_distributed, shutdown_distributed
from .step import step_seed
from .trainer import Trainer, TrainResult, build_model
from .validation import validate

__all__ = ["RunExistsError", "TrainResult", "build_model", "load_run_config", "step_seed", "train", "validate"]


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    resume: bool = False,
    progress: bool = True,
    interrupt_at: int | None = None,
    model: nn.Module | None = None,
) -> TrainResult:
    """Train ``cfg.model`` as ``cfg`` describes, writing into ``out_dir``.

    Args:
        cfg: the full configuration (see :func:`ivfuse.train.recipes.make_config`).
        out_dir: the run folder (created).
        resume: continue from the newest checkpoint in ``out_dir`` (starts from scratch if there
            is none yet).
        progress: show a progress bar (rank 0).
        interrupt_at: stop right after this global step, as if the process were killed (no
            final export); for tests.
        model: train this module instead of building ``cfg.model`` from the registry
            (``cfg.model`` still names the outputs). Build it the same way (same seed) when
            resuming.

    Returns:
        A :class:`TrainResult`.

    Raises:
        DatasetError: the training or validation data is unusable (before any training).
        RunExistsError: ``out_dir`` already holds a run and ``resume`` is False.
        ValueError: bad configuration (unknown model, stage prefix, schedule, ...).
        FloatingPointError: the loss became NaN or infinite.
    """
    ctx = init_distributed(cfg.device)
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(cfg, Path(out_dir), ctx, resume=resume, progress=progress, model=model)
        trainer.setup()
        trainer.write_run_files()
        return trainer.run(interrupt_at)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)  # cfg.threads applies to the run only
        shutdown_distributed(ctx)


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The configuration a run was started with (``RUN_DIR/config.json``)."""
    p = Path(run_dir) / "config.json"
    if not p.is_file():
        raise FileNotFoundError(f"'{p}': no run configuration (was the run started with ivfuse train?)")
    try:
        return config_from_dict(read_json(p, "--resume"))
    except ValueError as exc:
        msg = one_line(exc)
        raise type(exc)(msg if str(p) in msg else f"--resume: '{p}': {msg}") from exc
