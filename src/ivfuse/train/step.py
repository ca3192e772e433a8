"""One optimizer step and what it needs: mixed precision, the batch stream, the per-step seed.

:func:`train_step` is the forward/backward/update of the loop: autocast on CUDA, the loss in
float32, a NaN/inf check, gradient clipping, and the :class:`torch.amp.GradScaler` for float16.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import PairSampler
from ..infer import autocast_context, split_output
from .config import TrainConfig

__all__ = ["amp_setup", "batches", "scalar", "step_seed", "to_device", "train_step"]


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The torch seed set before ``step`` on process ``rank``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x57E9, int(step), int(rank)]).generate_state(1)[0])


def amp_setup(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """(autocast dtype or None, GradScaler or None) for ``cfg.amp`` on ``device`` (CUDA only).

    Raises:
        ValueError: ``cfg.amp`` is not auto, bf16, fp16 or off.
    """
    mode = (cfg.amp or "off").lower()
    if device.type != "cuda" or mode == "off":
        return None, None
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mode not in ("bf16", "fp16"):
        raise ValueError(f"amp must be auto, bf16, fp16 or off, got {cfg.amp!r}")
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return dtype, scaler


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch with its image tensors (ir, vis, roi, mask) on ``device``; other entries as they are."""
    out = dict(batch)
    nb = device.type == "cuda"
    for k in ("ir", "vis", "roi", "mask"):
        out[k] = batch[k].to(device, non_blocking=nb)
    return out


def scalar(v: Any) -> float:
    """A loss term (tensor or number) as a Python float."""
    return float(v.detach().float().item()) if isinstance(v, torch.Tensor) else float(v)


def batches(loader, sampler: PairSampler, start_step: int):
    """Batches for global steps start_step, start_step + 1, ... forever."""
    epoch, pos = divmod(start_step, sampler.steps_per_epoch)
    while True:
        sampler.set_epoch(epoch)
        sampler.set_start(pos)
        yield from loader
        epoch, pos = epoch + 1, 0


def train_step(
    net: nn.Module,
    batch: dict,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    grad_clip: float = 0.0,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    step: int = 0,
    stage: str = "",
) -> dict[str, Any]:
    """Forward, loss, backward and optimizer update on one batch (the learning rate is set by the caller).

    Args:
        net: the model (DDP-wrapped or bare); called as ``net(ir, vis, return_maps=True)``.
        batch: collated pairs on the model's device (ir, vis: (B, 1, H, W) in [0, 1]; roi, mask, ...).
        criterion: ``criterion(fused, maps, batch) -> (loss, terms)``, run in float32.
        optimizer: the stage's optimizer over ``params``.
        params: the trainable parameters (for gradient clipping).
        grad_clip: clip the global gradient norm to this (0: off).
        scaler: the float16 grad scaler, or None.
        amp_dtype: autocast dtype of the forward pass, or None for float32.
        step, stage: the global step and the stage's name, for the error message.

    Returns:
        The loss terms of the step (tensors or floats).

    Raises:
        FloatingPointError: the loss is NaN or infinite.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast_context(batch["ir"].device, amp_dtype):
        fused, maps = split_output(net(batch["ir"], batch["vis"], return_maps=True))
    loss, terms = criterion(fused.float(), {k: v.float() for k, v in maps.items()}, batch)
    if not torch.isfinite(loss):
        shown = {k: round(scalar(v), 5) for k, v in terms.items()}
        raise FloatingPointError(
            f"loss is {float(loss.detach())} at step {step} (stage '{stage}', terms {shown}); "
            "lower the learning rate or check the data"
        )
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
    return terms
