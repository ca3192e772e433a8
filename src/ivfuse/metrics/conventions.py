"""The three reference conventions and the input handling each one implies.

A convention names the reference evaluator whose numbers we reproduce:

- ``"vifb"``: the VIFB benchmark's MATLAB metrics (the default; it is the complete reference,
  with all 13 of its metrics defined in one place and no dependence on a library version).
- ``"cddfuse"``: ``utils/Evaluator.py`` of MMIF-CDDFuse (Python, scikit-image 0.19), the evaluator
  of most recent deep fusion papers.
- ``"tang"``: Linfeng Tang's MATLAB ``Evaluation-for-Image-Fusion`` scripts.

This module turns the three images, already scaled to float64 in 0..255, into the single-channel
planes each convention scores: see :func:`prepare_planes`. What each convention changes inside
a metric (log base, sum vs average, ranges) lives next to the metric's formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "Convention",
    "Planes",
    "check_convention",
    "cv2_gray",
    "matlab_rgb2gray",
    "prepare_fused",
    "prepare_planes",
    "prepare_sources",
]

DEFAULT_CONVENTION = "vifb"

# MATLAB rgb2gray weights: first row of the inverse of the NTSC YIQ matrix, as MATLAB computes them.
_MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


@dataclass(frozen=True)
class Convention:
    """What a convention is and how it turns colour inputs into the planes it scores.

    Attributes:
        name: ``"vifb"``, ``"cddfuse"`` or ``"tang"``.
        reference: the reference evaluator, as a citation.
        gray: how colour inputs become gray (``"per-channel"`` means no conversion).

    The metrics a convention's reference table reports are read from the metric entries
    (``MetricInfo.conventions``): :func:`ivfuse.metrics.list_metrics` with the convention's name.
    """

    name: str
    reference: str
    gray: str


CONVENTIONS: dict[str, Convention] = {
    "vifb": Convention(
        name="vifb",
        reference="VIFB (Zhang et al., CVPRW 2020), github.com/xingchenzhang/VIFB, metrics/*.m",
        gray="per-channel: a colour fused image is scored per RGB channel and the scores averaged",
    ),
    "cddfuse": Convention(
        name="cddfuse",
        reference="MMIF-CDDFuse utils/Evaluator.py (Zhao et al., CVPR 2023), scikit-image 0.19",
        gray="OpenCV BGR2GRAY on float32, then rounded",
    ),
    "tang": Convention(
        name="tang",
        reference="github.com/Linfeng-Tang/Evaluation-for-Image-Fusion, Evaluation/*.m (MATLAB)",
        gray="MATLAB rgb2gray to uint8",
    ),
}


def check_convention(convention: str) -> str:
    """Return the canonical (lower-case) convention name or raise ``ValueError`` naming the valid ones."""
    key = convention.lower() if isinstance(convention, str) else None
    if key not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; valid conventions: {', '.join(CONVENTIONS)}")
    return key


@dataclass(frozen=True)
class Planes:
    """One single-channel triple to score: fused, infrared and visible, each (H, W) float64 in 0..255."""

    fused: np.ndarray
    ir: np.ndarray
    vis: np.ndarray


def matlab_rgb2gray(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of a uint8 image: weighted sum rounded half away from zero.

    Args:
        rgb: (H, W, 3) float64 with integer values in 0..255.

    Returns:
        (H, W) float64 with integer values in 0..255.
    """
    y = rgb[..., 0] * _MATLAB_GRAY[0]
    y += rgb[..., 1] * _MATLAB_GRAY[1]
    y += rgb[..., 2] * _MATLAB_GRAY[2]
    return _quantize_uint8(y, inplace=True)


def cv2_gray(rgb: np.ndarray) -> np.ndarray:
    """``np.round(cv2.cvtColor(img_float32, cv2.COLOR_BGR2GRAY))`` without OpenCV.

    OpenCV computes ``0.114 B + 0.587 G + 0.299 R`` in float32; the same float32 arithmetic is
    reproduced here, then rounded half to even as ``np.round`` does.

    Args:
        rgb: (H, W, 3) float64 in 0..255 (RGB order).

    Returns:
        (H, W) float64 with integer values.
    """
    # Each product casts its channel to float32 and multiplies in float32 (no float32 copy of
    # the whole image); the sum runs in OpenCV's order, B + G + R.
    y = np.multiply(rgb[..., 2], np.float32(0.114), dtype=np.float32)
    y += np.multiply(rgb[..., 1], np.float32(0.587), dtype=np.float32)
    y += np.multiply(rgb[..., 0], np.float32(0.299), dtype=np.float32)
    return np.round(y).astype(np.float64)


def _quantize_uint8(img: np.ndarray, inplace: bool = False) -> np.ndarray:
    """MATLAB ``uint8`` of an image in 0..255: round half away from zero, saturate."""
    out = img if inplace else img.copy()
    out += 0.5
    np.floor(out, out=out)
    return np.clip(out, 0.0, 255.0, out=out)


def _float_plane(plane: np.ndarray) -> np.ndarray:
    """A C-contiguous float64 copy of one plane (or the plane itself when it already is one)."""
    return np.ascontiguousarray(plane, dtype=np.float64)


def _channels(img: np.ndarray) -> list[np.ndarray]:
    """Three float64 planes of an image; a gray image (or one whose channels are equal) gives one plane three times.

    Repeating the same array object lets per-image work be shared between the channels.
    """
    if img.ndim == 2:
        plane = _float_plane(img)
        return [plane, plane, plane]
    planes = [img[..., k] for k in range(3)]
    if np.array_equal(planes[0], planes[1]) and np.array_equal(planes[0], planes[2]):
        return [_float_plane(planes[0])] * 3
    return [_float_plane(p) for p in planes]


def _to_gray(img: np.ndarray, convention: str) -> np.ndarray:
    if img.dtype == np.uint8:
        # 8-bit levels: rounding and quantising to uint8 leave them as they are.
        if img.ndim == 2:
            return img.astype(np.float64)
        if convention == "cddfuse":
            return np.clip(cv2_gray(img), 0.0, 255.0)
        return matlab_rgb2gray(img)
    if convention == "vifb":
        return img if img.ndim == 2 else matlab_rgb2gray(np.floor(img + 0.5))
    if convention == "cddfuse":
        return np.clip(cv2_gray(img) if img.ndim == 3 else np.round(img), 0.0, 255.0)
    return matlab_rgb2gray(_quantize_uint8(img)) if img.ndim == 3 else _quantize_uint8(img)


def prepare_fused(fused: np.ndarray, convention: str) -> list[np.ndarray]:
    """The fused planes a convention scores (see :func:`prepare_planes`).

    Args:
        fused: (H, W) or (H, W, 3) float64 in 0..255, or uint8.
        convention: ``"vifb"``, ``"cddfuse"`` or ``"tang"``.

    Returns:
        Three (H, W) float64 planes for a colour image under ``vifb``, otherwise one.
    """
    convention = check_convention(convention)
    if convention == "vifb" and fused.ndim == 3:
        return [_float_plane(fused[..., k]) for k in range(3)]
    return [_to_gray(fused, convention)]


def prepare_sources(
    ir: np.ndarray, vis: np.ndarray, convention: str, fused_is_colour: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (visible, infrared) source planes matching :func:`prepare_fused`'s planes.

    Args:
        ir: (H, W) or (H, W, 3) float64 in 0..255, or uint8.
        vis: (H, W) or (H, W, 3) float64 in 0..255, or uint8.
        convention: ``"vifb"``, ``"cddfuse"`` or ``"tang"``.
        fused_is_colour: whether the fused image is (H, W, 3) (matters for ``vifb`` only).

    Returns:
        One (vis, ir) pair per fused plane.
    """
    convention = check_convention(convention)
    if convention == "vifb" and fused_is_colour:
        return list(zip(_channels(vis), _channels(ir)))
    return [(_to_gray(vis, convention), _to_gray(ir, convention))]


def prepare_planes(fused: np.ndarray, ir: np.ndarray, vis: np.ndarray, convention: str) -> list[Planes]:
    """Apply a convention's input handling.

    Args:
        fused: (H, W) or (H, W, 3) float64 in 0..255.
        ir: (H, W) or (H, W, 3) float64 in 0..255.
        vis: (H, W) or (H, W, 3) float64 in 0..255.
        convention: ``"vifb"``, ``"cddfuse"`` or ``"tang"``.

    Returns:
        The planes to score; every metric is computed per plane and the results averaged.
        ``vifb`` gives three planes for a colour fused image (channel k of the fused image with
        channel k of each source, a gray source replicated) and one plane for a gray fused image
        (colour sources converted with MATLAB ``rgb2gray``, as VIFB's uint8 path does).
        ``cddfuse`` (OpenCV gray, rounded) and ``tang`` (MATLAB ``rgb2gray`` to uint8; gray
        images rounded to uint8) always give one gray plane.
    """
    fused_planes = prepare_fused(fused, convention)
    sources = prepare_sources(ir, vis, convention, fused.ndim == 3)
    return [Planes(fused=f, ir=i, vis=v) for f, (v, i) in zip(fused_planes, sources)]
