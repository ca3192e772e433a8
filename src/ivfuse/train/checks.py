"""Checks a run passes before anything is written: the model, the stages, a checkpoint to resume from.

Each raises a one-line ``ValueError`` naming the option or file at fault, so that a run that
cannot start (or resume) leaves its run folder exactly as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_checkpoint_dir
from .config import TrainConfig
from .stages import StagePlan, build_optimizer, lr_at, select_parameters

__all__ = [
    "RunExistsError",
    "check_model",
    "check_resume_optimizer",
    "check_stages",
    "one_line",
    "read_checkpoint",
    "read_json",
    "stage_params",
]


class RunExistsError(ValueError):
    """The run folder already holds a run and ``resume`` was not asked for."""


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type name when it has none)."""
    return " ".join((str(exc) or type(exc).__name__).split())


def read_json(path: Path, option: str) -> dict:
    """A JSON object from ``path``; a ``ValueError`` naming ``option`` and the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{option}: '{path}' is unreadable ({one_line(exc)})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{option}: '{path}' does not hold a JSON object")
    return data


def check_model(model: nn.Module, cfg: TrainConfig) -> None:
    """The model has parameters, and the training crop is a multiple of its ``pad_multiple``."""
    if not any(True for _ in model.parameters()):
        raise ValueError(f"model '{cfg.model}' has no parameters to train (training-free method)")
    mult = int(getattr(model, "pad_multiple", 1) or 1)
    if cfg.data.crop % mult:
        raise ValueError(
            f"crop {cfg.data.crop} is not a multiple of {mult}, which model '{cfg.model}' needs; "
            f"use --crop {((cfg.data.crop + mult - 1) // mult) * mult}"
        )


def stage_params(model: nn.Module, stage) -> list[nn.Parameter]:
    """The parameters :func:`~ivfuse.train.stages.apply_stage` would train, in its order, without touching the model."""
    chosen = set(select_parameters(model, stage.train, stage.freeze))
    return [p for n, p in model.named_parameters() if n in chosen]


def check_stages(model: nn.Module, plans: list[StagePlan]) -> None:
    """Every stage selects parameters, builds its optimizer and evaluates its schedule (nothing is kept)."""
    for plan in plans:
        st = plan.stage
        try:
            build_optimizer(st.optimizer, stage_params(model, st))
            for s in (0, plan.steps - 1):
                lr_at(st.optimizer, st.schedule, s, plan)
        except ValueError as exc:
            raise ValueError(f"setting 'stages.{plan.index}' (stage '{st.name}'): {one_line(exc)}") from exc


def read_checkpoint(path: Path) -> dict:
    """:func:`~ivfuse.train.checkpoint.load_checkpoint_dir` with every failure turned into a one-line
    ``ValueError`` naming the folder."""
    from safetensors import SafetensorError

    try:
        ckpt = load_checkpoint_dir(path)
        int(ckpt["state"]["step"])
        rng = ckpt.get("rng")
        if rng is not None:
            t = rng[0].get("torch")
            if t is None or t.dtype != torch.uint8 or t.numel() != torch.get_rng_state().numel():
                raise ValueError("rng.safetensors holds no torch generator state")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"--resume: checkpoint '{path}' cannot be used: {one_line(exc)}; delete that folder "
                         "to resume from the one before it, if any") from exc
    return ckpt


def check_resume_optimizer(model: nn.Module, ckpt: dict, path: Path, plans: list[StagePlan], step: int) -> None:
    """The checkpoint's stage and optimizer state fit the stage that ``step`` falls in (a throw-away optimizer)."""
    plan = next((p for p in plans if p.end > step), None)
    if plan is None or step <= plan.start or ckpt["optimizer"] is None:
        return  # the run is done, or the stage starts afresh
    idx = int(ckpt["state"].get("stage_index", -1))
    if idx != plan.index:
        raise ValueError(
            f"--resume: checkpoint '{path}' was saved in stage {idx}, but step {step} falls in stage {plan.index} "
            f"('{plan.stage.name}') of the configuration; keep the run's stages and --steps"
        )
    opt = build_optimizer(plan.stage.optimizer, stage_params(model, plan.stage))
    try:
        opt.load_state_dict(ckpt["optimizer"])
        for group in opt.param_groups:
            for p in group["params"]:
                for k, v in opt.state.get(p, {}).items():
                    if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != p.shape:
                        raise ValueError(f"state '{k}' is {tuple(v.shape)} for a parameter of {tuple(p.shape)}")
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"--resume: the optimizer state in '{path}' does not fit stage '{plan.stage.name}' "
                         f"({one_line(exc)})") from exc
