"""Modality-independent image representations for registration: gray, structure maps, texture checks."""

from __future__ import annotations

import numpy as np

from ..io import as_gray as bt601_gray
from .transform import RegistrationError, needs_cv2

__all__ = ["as_gray", "structure_map", "to_u8", "check_texture"]


def as_gray(img: np.ndarray, role: str = "image", name: str = "") -> np.ndarray:
    """(H, W) float32 luminance of an (H, W) or (H, W, C) image in [0, 1] (BT.601 weights for RGB)."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = bt601_gray(a)
    if a.ndim != 2:
        raise RegistrationError(f"{_who(name)}{role} image: expected (H, W) or (H, W, 3), got shape {a.shape}")
    if min(a.shape) < 16:
        raise RegistrationError(
            f"{_who(name)}{role} image of {a.shape[1]}x{a.shape[0]} pixels is too small to register")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise RegistrationError(f"{_who(name)}{role} image has NaN or infinite values")
    return a


def structure_map(gray: np.ndarray, sigma: float = 1.5, normalize: float = 15.0, floor: float = 0.5) -> np.ndarray:
    """Gradient magnitude of the blurred image, divided by its local mean: edges of either modality.

    Infrared and visible images disagree on intensities (a warm body is bright in one, dark in
    the other) but mostly agree on where edges are. The Sobel magnitude of a Gaussian-blurred
    image keeps edge positions and drops the sign; dividing by a wide local average of the
    magnitude evens out contrast between low- and high-texture areas and between modalities.

    Args:
        gray: (H, W) float in [0, 1].
        sigma: Gaussian blur before the gradients, in pixels.
        normalize: width (sigma, pixels) of the local mean the magnitude is divided by; 0 to
            divide by the global 99th percentile instead.

    Returns:
        (H, W) float32, about 0..1 (clipped at 1).
    """
    cv2 = needs_cv2()
    g = cv2.GaussianBlur(gray, (0, 0), sigma) if sigma > 0 else gray
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    if normalize > 0:
        local = cv2.GaussianBlur(mag, (0, 0), normalize)
        lo = max(float(np.percentile(mag, 75)) * floor, 1e-4)
        mag = mag / (2.5 * np.maximum(local, lo))
    else:
        mag = mag / max(float(np.percentile(mag, 99)), 1e-6)
    return np.clip(mag, 0, 1).astype(np.float32)


def to_u8(img: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8."""
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def check_texture(gray: np.ndarray, role: str, name: str) -> None:
    """Raise :class:`RegistrationError` when an image has no texture that could be matched."""
    cv2 = needs_cv2()
    g = cv2.GaussianBlur(gray, (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    strong = float((mag > 0.02).mean())  # Sobel of a 0..1 image: 0.02 is about a 1% step over 3 pixels
    if float(gray.std()) < 2e-3 or strong < 0.002:
        raise RegistrationError(f"{_who(name)}{role} image has no texture to match "
                                f"(std {gray.std():.4f}, {strong:.2%} edge pixels)")


def _who(name: str) -> str:
    return f"'{name}': " if name else ""
