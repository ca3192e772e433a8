"""Image file formats and the path type of the io functions: extensions, output format checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

__all__ = ["IMAGE_EXTENSIONS", "PathLike", "check_output_format"]

PathLike = Union[str, os.PathLike]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def check_output_format(path: PathLike, bit_depth: int = 8) -> Path:
    """Check that :func:`write_image` can encode this file, before any work is done.

    Raises:
        ValueError: unsupported extension or bit depth, or 16 bits asked of a format without them.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"'{p}': unsupported output extension '{p.suffix}', use one of {', '.join(IMAGE_EXTENSIONS)}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and ext not in (".png", ".tif", ".tiff"):
        raise ValueError(f"'{p}': 16-bit output needs a .png or .tif file, not '{p.suffix}'")
    return p
