"""Inference helpers: device and dtype selection, padding to a multiple, batched model calls."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .filters import safe_pad

__all__ = [
    "select_device", "pad_to_multiple", "crop_to", "split_output", "forward_padded", "autocast_context", "run_model",
    "available_memory", "auto_tile_size", "tile_grid",
]

#: Bytes of working memory per input pixel assumed for a network that does not declare its own
#: ``memory_per_pixel`` (float32 activations of a few dozen channels, kept during a forward pass).
DEFAULT_MEMORY_PER_PIXEL = 2048

#: Upper bound on the working memory of one forward pass chosen by automatic tiling, whatever the
#: machine has free: beyond it larger tiles bring no speed, only the risk of swapping.
MAX_WORKING_MEMORY = 2 * 1024**3

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """Resolve "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", "mps", ...

    Raises:
        ValueError: an unknown device name, or a device this machine does not have.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device '{device}': unknown device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device '{device}': CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device '{device}': this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"--device '{device}': Apple MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise ValueError(f"--device '{device}': unsupported device type '{dev.type}'; use auto, cpu, cuda or cuda:N")
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


def available_memory(device: torch.device) -> int:
    """Bytes that can be used now: free CUDA memory, or MemAvailable from /proc/meminfo on CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 1024**3  # unknown platform: assume 8 GiB


def auto_tile_size(model: nn.Module, height: int, width: int, device: torch.device, budget: float = 0.5) -> int | None:
    """Tile side that keeps a forward pass within ``budget`` of the available memory (and within
    :data:`MAX_WORKING_MEMORY`), or None if the whole image fits.

    The model's ``memory_per_pixel`` attribute (bytes per input pixel during a forward pass; see
    ``benchmarks/``) sets the estimate; parameter-free methods are cheap and never tiled.
    """
    per_px = getattr(model, "memory_per_pixel", None)
    if per_px is None:
        if not any(True for _ in model.parameters()):
            return None
        per_px = DEFAULT_MEMORY_PER_PIXEL
    max_px = min(budget * available_memory(device), MAX_WORKING_MEMORY) / per_px
    if height * width <= max_px:
        return None
    side = int(max_px**0.5)
    multiple = int(getattr(model, "pad_multiple", 1) or 1)
    return max(64, side - side % max(multiple, 1))


def tile_grid(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` shared pixels."""
    if tile >= length:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(n: int, overlap: int, taper_start: bool, taper_end: bool) -> torch.Tensor:
    """1-D blending weights of a tile.

    On a side shared with a neighbour, the outer quarter of the overlap (where the network saw
    the tile's artificial border) gets almost no weight and the rest ramps linearly to 1; the
    neighbour's mirrored ramp covers those pixels with its interior. Sides on the image border
    keep weight 1.
    """
    w = torch.ones(n)
    if overlap > 0:
        dead = overlap / 4.0
        i = torch.arange(overlap, dtype=torch.float32)
        r = ((i + 1 - dead) / (overlap - dead + 1)).clamp(1e-3, 1.0)[:n]
        if taper_start:
            w[: r.numel()] = torch.minimum(w[: r.numel()], r)
        if taper_end:
            w[n - r.numel() :] = torch.minimum(w[n - r.numel() :], r.flip(0))
    return w


def split_output(out) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A model's output as (fused, maps): a tensor alone, or a tuple (fused, maps or None, ...).

    Raises:
        TypeError: the fused output is not a tensor.
    """
    if isinstance(out, tuple):
        fused, maps = out[0], (out[1] if len(out) > 1 and out[1] is not None else {})
    else:
        fused, maps = out, {}
    if not isinstance(fused, torch.Tensor):
        raise TypeError(f"the model returned {type(fused).__name__}, expected a tensor or (tensor, maps)")
    return fused, dict(maps)


def forward_padded(
    model: nn.Module, ir: torch.Tensor, vis: torch.Tensor, multiple: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Pad both inputs to ``multiple``, run ``model(ir, vis, return_maps=True)``, crop the outputs back.

    Args:
        model: a fusion network.
        ir, vis: (B, 1, H, W) in [0, 1], on the model's device.
        multiple: the side multiple the network needs (see :func:`pad_to_multiple`).

    Returns:
        fused (B, 1, H, W) and maps {name: (B, C, H, W)}, float32 on the inputs' device, not clamped.
    """
    size = ir.shape[-2:]
    ir_p, _ = pad_to_multiple(ir, multiple)
    vis_p, _ = pad_to_multiple(vis, multiple)
    fused, maps = split_output(model(ir_p, vis_p, return_maps=True))
    return crop_to(fused, size).float(), {k: crop_to(v, size).float() for k, v in maps.items()}


def _run_tiled(model, ir, vis, multiple, tile: int, overlap: int, dev):
    b, _, h, w = ir.shape
    fused = torch.zeros(b, 1, h, w)
    maps: dict[str, torch.Tensor] = {}
    wsum = torch.zeros(1, 1, h, w)
    ys, xs = tile_grid(h, tile, overlap), tile_grid(w, tile, overlap)
    for y0 in ys:
        th = min(tile, h)
        wy = _ramp(th, overlap, y0 > 0, y0 + th < h)
        for x0 in xs:
            tw = min(tile, w)
            wx = _ramp(tw, overlap, x0 > 0, x0 + tw < w)
            sl = (..., slice(y0, y0 + th), slice(x0, x0 + tw))
            f, m = forward_padded(model, ir[sl].to(dev), vis[sl].to(dev), multiple)
            weight = (wy[:, None] * wx[None, :])[None, None]
            fused[sl] += f.cpu() * weight
            for k, v in m.items():
                if k not in maps:
                    maps[k] = torch.zeros(b, v.shape[1], h, w)
                maps[k][sl] += v.cpu() * weight
            wsum[sl] += weight
    return fused / wsum, {k: v / wsum for k, v in maps.items()}


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` on ``device`` to ``dtype``; a no-op context for float32 or None."""
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def run_model(
    model: nn.Module,
    ir: torch.Tensor,
    vis: torch.Tensor,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype = "float32",
    return_maps: bool = False,
    tile: int | str | None = "auto",
    tile_overlap: int = 64,
):
    """Fuse a batch with any registered model, at any size, within bounded memory.

    Pads to ``model.pad_multiple``, runs under ``torch.inference_mode`` (and autocast for
    float16/bfloat16), crops back and returns float32 CPU tensors. Large images are split into
    overlapping tiles whose results are blended with linear ramps across the overlaps, so no
    seam appears.

    Args:
        model: a :class:`~ivfuse.models.FusionModel`.
        ir, vis: (B, 1, H, W) in [0, 1].
        device: "auto", "cpu", "cuda", ...
        dtype: "float32", "float16" (CUDA) or "bfloat16".
        return_maps: also return the model's interpretability maps.
        tile: "auto" (tile only when the estimated memory exceeds half the available memory),
            None or 0 (never tile), or a tile side in pixels.
        tile_overlap: pixels shared by neighbouring tiles.

    Returns:
        fused (B, 1, H, W) in [0, 1], or (fused, maps) when ``return_maps``.
    """
    dev = select_device(device)
    dt = _DTYPES[dtype] if isinstance(dtype, str) else dtype
    multiple = int(getattr(model, "pad_multiple", 1) or 1)
    # On the CPU the oneDNN kernels run channels-last convolutions 1.4-2x faster: one pass over the weights for both.
    model = (model.to(dev, memory_format=torch.channels_last) if dev.type == "cpu" else model.to(dev)).eval()
    h, w = ir.shape[-2:]
    if tile == "auto":
        tile = auto_tile_size(model, h, w, dev)
    with torch.inference_mode(), autocast_context(dev, dt):
        if tile and (h > tile or w > tile):
            fused, maps = _run_tiled(model, ir.float(), vis.float(), multiple, int(tile), tile_overlap, dev)
        else:
            fused, maps = forward_padded(model, ir.to(dev, torch.float32), vis.to(dev, torch.float32), multiple)
        fused = fused.clamp(0, 1).cpu()
        maps = {k: v.clamp(0, 1).cpu() for k, v in maps.items()}
    return (fused, maps) if return_maps else fused
