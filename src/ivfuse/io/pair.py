"""An infrared/visible pair for a fusion network: gray infrared, visible split into Y and chroma.

:func:`load_pair` reads an infrared/visible pair into a :class:`Pair` with the infrared as gray
and the visible split into luminance (BT.601 Y) and chroma; :func:`restore_color` puts the
chroma back around a fused luminance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..color import rgb_to_ycbcr, ycbcr_to_rgb
from .image import as_gray, read_array, squeeze_channels, to_float

__all__ = ["Pair", "PairError", "load_pair", "restore_color"]


class PairError(ValueError):
    """A pair cannot be fused as given (for example its images differ in size)."""


@dataclass
class Pair:
    """An infrared/visible pair ready for a fusion network.

    Attributes:
        ir: (1, 1, H, W) float32 in [0, 1], the infrared (or structural) image as gray.
        vis: (1, 1, H, W) float32 in [0, 1], the luminance (BT.601 Y) of the visible image.
        chroma: (1, 2, H, W) Cb/Cr of the visible image, or None when it is gray.
        name: the pair's name (file stem, or relative path without extension).
        meta: provenance: source paths, original dtypes and sizes, whether infrared was resized.
    """

    ir: torch.Tensor
    vis: torch.Tensor
    chroma: torch.Tensor | None
    name: str
    meta: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.vis.shape[-2]), int(self.vis.shape[-1])


def _resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = img.shape[-2:]
    antialias = size[0] < h or size[1] < w
    return torch.nn.functional.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def _array_or_path(x, role: str) -> tuple[np.ndarray, str, str]:
    """Return (float image, name, source description) for a path or an array."""
    if isinstance(x, (str, os.PathLike)):
        p = Path(x)
        arr = read_array(p)
        return to_float(arr), p.stem, str(p)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim == 3 and x.shape[0] in (1, 3):
            x = np.moveaxis(x, 0, -1)
    if isinstance(x, np.ndarray):
        arr = squeeze_channels(x, Path(f"<{role} array>"))
        return to_float(arr), role, f"<{role} array>"
    raise TypeError(f"{role}: expected a path, numpy array or tensor, got {type(x).__name__}")


def load_pair(ir, vis, resize: bool = False, name: str | None = None) -> Pair:
    """Read an infrared/visible pair (paths or arrays) into a :class:`Pair`.

    The infrared image is converted to gray (BT.601 luminance if it is stored in colour). A
    colour visible image is split into Y, which is fused, and Cb/Cr, which are restored around
    the fused Y by :func:`restore_color`.

    Args:
        ir: path or array of the infrared (or structural, e.g. MRI) image.
        vis: path or array of the visible (or functional, e.g. PET) image.
        resize: if the sizes differ, resample the infrared image onto the visible grid instead
            of raising.
        name: pair name; defaults to the visible file's stem.

    Raises:
        ImageReadError: a file cannot be read (message names it).
        PairError: the images differ in size and ``resize`` is False.
    """
    ir_f, _, ir_src = _array_or_path(ir, "ir")
    vis_f, vis_name, vis_src = _array_or_path(vis, "vis")
    ir_t = torch.from_numpy(as_gray(ir_f).copy())[None, None]
    resized = False
    if ir_f.shape[:2] != vis_f.shape[:2]:
        if not resize:
            raise PairError(
                f"size mismatch: infrared {ir_src} is {ir_f.shape[1]}x{ir_f.shape[0]} but visible {vis_src} is "
                f"{vis_f.shape[1]}x{vis_f.shape[0]} (width x height); register the pair or pass --resize "
                "to resample the infrared image onto the visible grid"
            )
        ir_t = _resize(ir_t, vis_f.shape[:2]).clamp_(0, 1)
        resized = True
    if vis_f.ndim == 3:
        ycc = rgb_to_ycbcr(torch.from_numpy(np.moveaxis(vis_f, -1, 0).copy())[None])
        vis_t, chroma = ycc[:, :1].contiguous(), ycc[:, 1:].contiguous()
    else:
        vis_t, chroma = torch.from_numpy(vis_f.copy())[None, None], None
    meta = {"ir_path": ir_src, "vis_path": vis_src, "ir_resized": resized,
            "vis_channels": 3 if chroma is not None else 1}
    return Pair(ir=ir_t, vis=vis_t, chroma=chroma, name=name or vis_name, meta=meta)


def restore_color(fused_y: torch.Tensor, chroma: torch.Tensor | None) -> np.ndarray:
    """Put visible chroma back around a fused luminance.

    Args:
        fused_y: (1, 1, H, W) or (H, W) fused luminance in [0, 1].
        chroma: (1, 2, H, W) Cb/Cr in [0, 1], or None for a gray result.

    Returns:
        float32 array in [0, 1]: (H, W, 3) when chroma is given, else (H, W).
    """
    y = fused_y.detach().float().cpu()
    while y.dim() < 4:
        y = y.unsqueeze(0)
    if chroma is None:
        return y[0, 0].clamp(0, 1).numpy()
    rgb = ycbcr_to_rgb(torch.cat((y, chroma.detach().float().cpu()), dim=1)).clamp_(0, 1)
    return rgb[0].permute(1, 2, 0).contiguous().numpy()
