"""Inference helpers: device and dtype selection, padding to a multiple, batched model calls."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .filters import safe_pad

__all__ = ["select_device", "pad_to_multiple", "crop_to", "run_model"]

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", ...

    Raises:
        ValueError: CUDA was asked for but is not available.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but CUDA is not available on this machine; use --device cpu")
    return dev


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad H and W at the bottom/right up to a multiple, by reflection (replication when too small).

    Args:
        x: (B, C, H, W).
        multiple: the size the network needs H and W to be divisible by.

    Returns:
        The padded tensor and the original (H, W), for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    if multiple <= 1:
        return x, (h, w)
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection can only mirror up to side-1 pixels; pad in rounds so any size works.
    while ph > 0 or pw > 0:
        ch, cw = x.shape[-2:]
        sh = min(ph, ch - 1) if mode == "reflect" and ch > 1 else ph
        sw = min(pw, cw - 1) if mode == "reflect" and cw > 1 else pw
        x = safe_pad(x, (0, sw, 0, sh), mode=mode)
        ph, pw = ph - sh, pw - sw
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop (…, H', W') to the top-left (H, W)."""
    return x[..., : size[0], : size[1]]


def _autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def run_model(
    model: nn.Module,
    ir: torch.Tensor,
    vis: torch.Tensor,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype = "float32",
    return_maps: bool = False,
):
    """Fuse a batch with any registered model, at any size.

    Pads to ``model.pad_multiple``, runs under ``torch.inference_mode`` (and autocast for
    float16/bfloat16), crops back and returns float32 CPU tensors.

    Args:
        model: a :class:`~ivfuse.models.FusionModel`.
        ir, vis: (B, 1, H, W) in [0, 1].
        device: "auto", "cpu", "cuda", ...
        dtype: "float32", "float16" (CUDA) or "bfloat16".
        return_maps: also return the model's interpretability maps.

    Returns:
        fused (B, 1, H, W) in [0, 1], or (fused, maps) when ``return_maps``.
    """
    dev = select_device(device)
    dt = _DTYPES[dtype] if isinstance(dtype, str) else dtype
    multiple = int(getattr(model, "pad_multiple", 1) or 1)
    model = model.to(dev).eval()
    size = ir.shape[-2:]
    with torch.inference_mode(), _autocast(dev, dt):
        ir_p, _ = pad_to_multiple(ir.to(dev, torch.float32), multiple)
        vis_p, _ = pad_to_multiple(vis.to(dev, torch.float32), multiple)
        out = model(ir_p, vis_p, return_maps=True)
        fused, maps = out if isinstance(out, tuple) else (out, {})
        fused = crop_to(fused, size).float().clamp(0, 1).cpu()
        maps = {k: crop_to(v, size).float().clamp(0, 1).cpu() for k, v in maps.items()}
    return (fused, maps) if return_maps else fused
