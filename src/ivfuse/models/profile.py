"""Model size and cost: parameter count, GFLOPs and CPU latency at a given resolution."""

from __future__ import annotations

import torch
from torch import nn

from .. import timing
from ..infer import pad_to_multiple
from .registry import count_parameters

__all__ = ["count_gflops", "measure_latency", "model_profile"]


def _inputs(model: nn.Module, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ir = torch.rand(1, 1, height, width, generator=g)
    vis = torch.rand(1, 1, height, width, generator=g)
    m = int(getattr(model, "pad_multiple", 1) or 1)
    return pad_to_multiple(ir, m)[0], pad_to_multiple(vis, m)[0]


def count_gflops(model: nn.Module, height: int = 480, width: int = 640) -> float:
    """GFLOPs of one forward pass on a (1, 1, height, width) pair (multiply-add counted as 2 FLOPs).

    Uses PyTorch's ``FlopCounterMode``, which counts matrix products and convolutions (the
    dominant cost); element-wise operations are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    ir, vis = _inputs(model, height, width)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.eval()(ir, vis)
    return counter.get_total_flops() / 1e9


def measure_latency(model: nn.Module, height: int = 480, width: int = 640, warmup: int = 2, repeat: int = 5) -> float:
    """Median seconds per forward pass on CPU after ``warmup`` runs (:func:`ivfuse.timing.measure_latency`)."""
    ir, vis = _inputs(model, height, width)
    model = model.eval()
    with torch.inference_mode():
        return timing.measure_latency(lambda: model(ir, vis), warmup, repeat).median_s


def model_profile(model: nn.Module, height: int = 480, width: int = 640) -> dict[str, float]:
    """{"params": ..., "gflops": ...} at the given resolution."""
    return {"params": count_parameters(model), "gflops": round(count_gflops(model, height, width), 3)}
