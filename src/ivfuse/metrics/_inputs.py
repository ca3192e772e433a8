"""Turning what users pass to :func:`ivfuse.metrics.evaluate` into float64 arrays in 0..255."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["to_float255"]

_SNAP = 1e-4  # in 0..255 units


def _read_path(path: Path) -> np.ndarray:
    """Native pixels of an image file, (H, W) or (H, W, 3) uint8/uint16, via ``ivfuse.io.read_array``."""
    try:
        from ivfuse.io import read_array  # imported here: it pulls in torch, which arrays do not need
    except ImportError as exc:
        raise ImportError(f"{path}: reading image files needs ivfuse.io and torch ({exc}); pass numpy arrays") from exc
    return read_array(path)


def _from_tensor(t, role: str) -> np.ndarray:
    arr = t.detach().cpu()
    if arr.is_floating_point():
        arr = arr.double()
    arr = arr.numpy()
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"{role}: expected a batch of one image (1, C, H, W), got shape {tuple(t.shape)}")
        arr = arr[0]
    if arr.ndim == 3:
        if arr.shape[0] not in (1, 3):
            raise ValueError(
                f"{role}: expected a tensor of shape (H, W), (1, H, W), (3, H, W) or (1, C, H, W), got {tuple(t.shape)}"
            )
        arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    elif arr.ndim != 2:
        raise ValueError(
            f"{role}: expected a tensor of shape (H, W), (1, H, W), (3, H, W) or (1, C, H, W), got {tuple(t.shape)}"
        )
    return arr


def _scale(arr: np.ndarray, role: str) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr.astype(np.float64) * 255.0
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == np.uint8:
            return arr.astype(np.float64)
        if arr.dtype == np.uint16:
            return arr.astype(np.float64) / 257.0
        return arr.astype(np.float64) * (255.0 / np.iinfo(arr.dtype).max)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float64) * 255.0
        if not np.all(np.isfinite(out)):
            raise ValueError(f"{role}: image contains NaN or infinite values")
        # float32 cannot hold k / 255 exactly; snap values within 1e-4 of a gray level back to it so
        # that an 8-bit image passed as floats bins and ties (Qabf) exactly like the 8-bit image.
        levels = np.round(out)
        near = np.abs(out - levels) < _SNAP
        out[near] = levels[near]
        return out
    raise ValueError(f"{role}: unsupported dtype {arr.dtype}")


def to_float255(img, role: str, keep_uint8: bool = False) -> np.ndarray:
    """Convert one input of ``evaluate`` to float64 in 0..255.

    Args:
        img: numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha dropped); a torch
            tensor (H, W), (1, H, W), (3, H, W) or (1, C, H, W) with C in {1, 3}; or a path.
            Integer arrays are scaled by their range (uint8 as is, uint16 / 257); float arrays
            and tensors are taken as [0, 1] and multiplied by 255 (values outside are kept;
            values within 1e-4 of an integer become that integer, undoing float32 rounding).
        role: ``"fused"``, ``"ir"`` or ``"vis"``, for error messages.
        keep_uint8: return a uint8 array as it is (its values are already the 0..255 levels);
            the convention's input handling converts the planes it scores to float64 (see
            :func:`ivfuse.metrics.conventions.prepare_fused`), which spares a float64 copy of a
            colour image that is only converted to gray.

    Returns:
        float64 array of shape (H, W) or (H, W, 3) (or the uint8 array, with ``keep_uint8``).
    """
    if isinstance(img, (str, Path)):
        arr = _read_path(Path(img))
    elif hasattr(img, "detach") and hasattr(img, "cpu"):
        arr = _from_tensor(img, role)
    elif isinstance(img, np.ndarray):
        arr = img
    else:
        raise TypeError(f"{role}: expected a numpy array, a torch tensor or a path, got {type(img).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"{role}: expected an image of shape (H, W) or (H, W, 3), got shape {arr.shape}")
    arr = np.asarray(arr)
    if keep_uint8 and arr.dtype == np.uint8:
        return arr
    return _scale(arr, role)
