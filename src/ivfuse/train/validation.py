"""Validation during training: whole validation images through :func:`ivfuse.infer.forward_padded`."""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch import nn

from ..data import PairedDataset, collate_pairs
from ..infer import autocast_context, forward_padded
from .step import scalar, to_device

__all__ = ["validate"]


def _restore_modes(modes: dict[nn.Module, bool]) -> None:
    for m, t in modes.items():
        m.training = t


def _metric_rows(evaluate, fused, batch, metrics, skipped: set[str]):
    """(name, value) of each finite metric of one fused image; failing metrics go into ``skipped``."""
    f, a, b = (t[0, 0].clamp(0, 1).cpu() for t in (fused, batch["ir"], batch["vis"]))
    for name in metrics:
        if name in skipped:
            continue
        try:
            res = evaluate(f, a, b, metrics=[name])
        except Exception:  # noqa: BLE001 (an unknown or failing metric is skipped, not fatal)
            skipped.add(name)
            continue
        for k, v in res.items():
            if isinstance(v, (int, float)) and math.isfinite(float(v)):
                yield k, float(v)


def validate(
    model: nn.Module,
    dataset: PairedDataset,
    criterion: nn.Module | None,
    device: torch.device | str = "cpu",
    metrics: list[str] | tuple[str, ...] = (),
    amp_dtype=None,
    skipped: set[str] | None = None,
) -> dict[str, float]:
    """Fuse every pair of ``dataset`` (whole images) and average the loss terms and metrics.

    Metrics come from :func:`ivfuse.metrics.evaluate`, imported lazily; a metric that is missing
    or fails is skipped (and its name added to ``skipped``). The model's train/eval modes are
    restored afterwards.

    Returns:
        ``{"val_loss": ..., "val_<term>": ..., "<metric>": ...}`` averaged over the pairs.
    """
    device = torch.device(device)
    skipped = skipped if skipped is not None else set()
    try:
        from ..metrics import evaluate
    except Exception:  # noqa: BLE001 (metrics missing or broken in this build: validate without them)
        evaluate = None
        skipped.update(metrics)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    mult = int(getattr(model, "pad_multiple", 1) or 1)
    try:
        with torch.no_grad():
            for i in range(len(dataset)):
                batch = to_device(collate_pairs([dataset[i]]), device)
                with autocast_context(device, amp_dtype):
                    fused, maps = forward_padded(model, batch["ir"], batch["vis"], mult)
                rows = []
                if criterion is not None:
                    _, terms = criterion(fused, maps, batch)
                    rows += [("val_loss" if k == "loss" else f"val_{k}", scalar(v)) for k, v in terms.items()]
                if evaluate is not None:
                    rows += _metric_rows(evaluate, fused, batch, metrics, skipped)
                for k, v in rows:
                    sums[k] += v
                    counts[k] += 1
    finally:
        _restore_modes(modes)
    return {k: sums[k] / counts[k] for k in sums if counts[k]}
