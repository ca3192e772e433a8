"""Image files to arrays and back: native pixels, float32 in [0, 1], atomic 8/16-bit writes.

* :func:`read_array` returns the file's native pixels (uint8 or uint16, (H, W) or (H, W, 3),
  alpha dropped) and raises :class:`ImageReadError` naming the file and the problem.
* :func:`read_image` scales those to float32 in [0, 1].
* :func:`write_image` writes 8- or 16-bit PNG/TIFF (8-bit JPEG/BMP) atomically: the file
  appears complete or not at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._files import atomic_write
from .formats import PathLike, check_output_format

__all__ = ["ImageReadError", "as_gray", "read_array", "read_image", "squeeze_channels", "to_float", "write_image"]


class ImageReadError(ValueError):
    """A file could not be read as an image. The message names the file and the problem."""


def _describe(path: Path) -> str:
    return f"'{path}'"


def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG file, or None if it is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(29)
    if len(head) < 29 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def squeeze_channels(arr: np.ndarray, path: Path) -> np.ndarray:
    """Bring an array to (H, W) or (H, W, 3), dropping alpha.

    Args:
        arr: (H, W) or (H, W, C) with C in 1..4 (gray, gray + alpha, RGB, RGBA).
        path: names the source in the error.

    Raises:
        ImageReadError: any other layout.
    """
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3:
        c = arr.shape[2]
        if c == 1:
            return arr[:, :, 0]
        if c == 2:  # gray + alpha
            return arr[:, :, 0]
        if c in (3, 4):
            return arr[:, :, :3]
    raise ImageReadError(f"{_describe(path)}: unsupported image layout with shape {arr.shape}")


def _to_native_dtype(arr: np.ndarray, path: Path) -> np.ndarray:
    """Map any pixel dtype to uint8 or uint16."""
    if arr.dtype == np.uint8 or arr.dtype == np.uint16:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min(initial=0)), int(arr.max(initial=0))
        if lo < 0:
            raise ImageReadError(f"{_describe(path)}: signed pixel values (min {lo}) are not supported")
        if hi <= 255 and arr.dtype.itemsize == 1:
            return arr.astype(np.uint8)
        if hi <= 65535:
            return arr.astype(np.uint16)
        raise ImageReadError(f"{_describe(path)}: pixel values up to {hi} exceed 16 bits")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageReadError(f"{_describe(path)}: floating-point image contains NaN or infinity")
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
        if lo < 0 or hi > 1:
            raise ImageReadError(
                f"{_describe(path)}: floating-point image must hold values in [0, 1], found [{lo:g}, {hi:g}]"
            )
        return np.round(arr.astype(np.float64) * 65535).astype(np.uint16)
    raise ImageReadError(f"{_describe(path)}: unsupported pixel type {arr.dtype}")


def _read_png16(path: Path) -> np.ndarray:
    import png  # pypng: Pillow cannot hold 16-bit colour

    reader = png.Reader(filename=str(path))
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)
    return arr


def _read_with_pillow(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode == "PA":
                im = im.convert("RGBA")
            elif mode == "1":
                im = im.convert("L")
            elif mode.startswith("I;16"):
                arr = np.asarray(im).astype(np.uint16)
                return arr
            return np.asarray(im)
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{_describe(path)}: not an image file (unrecognised format)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{_describe(path)}: cannot decode image ({exc}); the file may be truncated") from exc


def read_array(path: PathLike) -> np.ndarray:
    """Read an image file and return its native pixels.

    Args:
        path: PNG, JPEG, BMP or TIFF file; 8 or 16 bits per sample; gray, gray+alpha, RGB, RGBA
            or palette.

    Returns:
        uint8 or uint16 array of shape (H, W) for gray images or (H, W, 3) for colour ones
        (alpha is dropped; a gray image stored as RGB stays (H, W, 3)).

    Raises:
        ImageReadError: the file is missing, is a directory, is empty, is not an image, or cannot
            be decoded (e.g. truncated). The message names the file.
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{_describe(p)}: file not found")
    if p.is_dir():
        raise ImageReadError(f"{_describe(p)}: is a directory, expected an image file")
    if p.stat().st_size == 0:
        raise ImageReadError(f"{_describe(p)}: file is empty")
    try:
        png_head = _png_header(p)
        if png_head is not None and png_head[0] == 16 and png_head[1] in (2, 6):
            try:
                arr = _read_png16(p)
            except Exception as exc:  # pypng raises its own FormatError/ChunkError types
                raise ImageReadError(
                    f"{_describe(p)}: cannot decode 16-bit PNG ({exc}); the file may be truncated"
                ) from exc
        elif _is_tiff(p):
            import tifffile

            try:
                arr = tifffile.imread(p)
            except Exception as exc:
                raise ImageReadError(f"{_describe(p)}: cannot decode TIFF ({exc}); the file may be truncated") from exc
            if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 2, 3, 4):
                arr = np.moveaxis(arr, 0, -1)  # planar storage
        else:
            arr = _read_with_pillow(p)
    except PermissionError as exc:
        raise ImageReadError(f"{_describe(p)}: permission denied") from exc
    arr = squeeze_channels(np.asarray(arr), p)
    arr = _to_native_dtype(arr, p)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(f"{_describe(p)}: image has zero size {arr.shape}")
    return np.ascontiguousarray(arr)


def to_float(arr: np.ndarray) -> np.ndarray:
    """Scale a uint8/uint16 array (or a float array in [0, 1]) to float32 in [0, 1]."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(arr, 0.0, 1.0).astype(np.float32)
    raise TypeError(f"to_float: unsupported dtype {arr.dtype}")


def read_image(path: PathLike) -> np.ndarray:
    """Read an image as float32 in [0, 1], shape (H, W) or (H, W, 3). See :func:`read_array`."""
    return to_float(read_array(path))


def _quantize(img: np.ndarray, bit_depth: int) -> np.ndarray:
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if img.dtype == np.uint8 and bit_depth == 8:
        return img
    if img.dtype == np.uint16 and bit_depth == 16:
        return img
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    elif not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"write_image: unsupported dtype {img.dtype}")
    if not np.isfinite(img).all():
        raise ValueError("write_image: image contains NaN or infinity")
    scale = 255.0 if bit_depth == 8 else 65535.0
    out = np.round(np.clip(img.astype(np.float64), 0.0, 1.0) * scale)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)


#: zlib level of the 8-bit PNG files ivfuse writes (0-9; Pillow's default is 6).
PNG_COMPRESS_LEVEL = 1


def _encode(fh, img: np.ndarray, ext: str, quality: int) -> None:
    """Write ``img`` (uint8/uint16, (H,W) or (H,W,3)) in the format named by ``ext`` to ``fh``."""
    if ext in (".tif", ".tiff"):
        import io as _io

        import tifffile

        buf = _io.BytesIO()
        tifffile.imwrite(buf, img, photometric="rgb" if img.ndim == 3 else "minisblack")
        fh.write(buf.getvalue())
        return
    if img.dtype == np.uint16:
        if ext != ".png":
            raise ValueError(f"16-bit output needs PNG or TIFF, not {ext}")
        import png

        h, w = img.shape[:2]
        planes = 1 if img.ndim == 2 else img.shape[2]
        writer = png.Writer(width=w, height=h, bitdepth=16, greyscale=(planes == 1))
        writer.write(fh, img.reshape(h, w * planes).tolist())
        return
    from PIL import Image

    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}[ext]
    kwargs = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {}
    if fmt == "PNG":
        # zlib level 1: still lossless, about 6x faster to write than Pillow's default 6 for a 640x480
        # colour image (files about 15 % larger); at level 6 writing took longer than fusing.
        kwargs["compress_level"] = PNG_COMPRESS_LEVEL
    Image.fromarray(img).save(fh, format=fmt, **kwargs)


def write_image(path: PathLike, img: np.ndarray, bit_depth: int = 8, quality: int = 95) -> Path:
    """Write an image atomically.

    The pixels go to a temporary file in the destination folder, which is flushed and then
    renamed over ``path``: a crash leaves either the old file or the complete new one, never a
    partial file.

    Args:
        path: destination; the extension picks the format (.png, .jpg/.jpeg, .bmp, .tif/.tiff).
        img: (H, W) or (H, W, 3); float in [0, 1] (clipped) or uint8/uint16.
        bit_depth: 8 or 16 (16 needs PNG or TIFF).
        quality: JPEG quality.

    Returns:
        The written path.
    """
    p = check_output_format(path, bit_depth)
    ext = p.suffix.lower()
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(f"'{p}': expected an image of shape (H, W) or (H, W, 3), got {img.shape}")
    data = _quantize(img, bit_depth)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(p, lambda fh: _encode(fh, data, ext, quality))
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        raise OSError(exc.errno, f"cannot write the image: {exc.strerror or exc}", str(p)) from exc
    return p


def as_gray(arr: np.ndarray) -> np.ndarray:
    """float (H, W[, 3 or 4]) -> (H, W) float32 BT.601 luminance (a gray array is returned as it is).

    The one numpy luma of the package: ``0.299 R + 0.587 G + 0.114 B``, added in that order in the
    input's dtype, then cast to float32 (an alpha channel is ignored).
    """
    if arr.ndim == 2:
        return arr
    return (0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]).astype(np.float32)
