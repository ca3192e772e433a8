"""Image reading and writing, colour handling at the edges, and pair discovery.

Inside ivfuse every image is float32 in [0, 1]; this module is where files become arrays and
arrays become files.

* :func:`read_array` returns the file's native pixels (uint8 or uint16, (H, W) or (H, W, 3),
  alpha dropped) and raises :class:`ImageReadError` naming the file and the problem.
* :func:`read_image` scales those to float32 in [0, 1].
* :func:`write_image` writes 8- or 16-bit PNG/TIFF (8-bit JPEG/BMP) atomically: the file
  appears complete or not at all.
* :func:`load_pair` reads an infrared/visible pair into a :class:`Pair` with the infrared as
  gray and the visible split into luminance (BT.601 Y) and chroma; :func:`restore_color`
  puts the chroma back around a fused luminance.
* :func:`find_pairs` finds pairs in a dataset folder laid out as TNO, RoadScene, MSRS, M3FD,
  LLVIP or the Harvard medical sets.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
import torch

from ._files import atomic_write
from .color import rgb_to_ycbcr, ycbcr_to_rgb

__all__ = [
    "IMAGE_EXTENSIONS",
    "check_output_format",
    "check_writable_folder",
    "is_within",
    "same_file",
    "ImageReadError",
    "PairError",
    "Pair",
    "PairPaths",
    "PairScan",
    "read_array",
    "read_image",
    "write_image",
    "to_float",
    "load_pair",
    "restore_color",
    "find_pairs",
    "find_modality_dirs",
]

PathLike = Union[str, os.PathLike]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Folder names of the infrared-like (structural, gray) and visible-like (chroma-bearing) images,
# as the public datasets spell them. Matching is case-insensitive.
# TNO / RoadScene / MSRS: ir, vi; M3FD: Ir, Vis; LLVIP: infrared, visible; KAIST: lwir, visible;
# Harvard medical: MRI with CT, PET or SPECT (MRI plays the gray role, the functional image
# supplies chroma).
MODALITY_DIR_PAIRS: tuple[tuple[str, str], ...] = (
    ("ir", "vi"),
    ("ir", "vis"),
    ("ir", "visible"),
    ("ir", "rgb"),
    ("inf", "vis"),
    ("inf", "vi"),
    ("infrared", "visible"),
    ("lwir", "visible"),
    ("lwir", "rgb"),
    ("thermal", "visible"),
    ("thermal", "rgb"),
    ("mri", "ct"),
    ("mri", "pet"),
    ("mri", "spect"),
)


class ImageReadError(ValueError):
    """A file could not be read as an image. The message names the file and the problem."""


class PairError(ValueError):
    """A pair cannot be fused as given (for example its images differ in size)."""


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


def _squeeze_channels(arr: np.ndarray, path: Path) -> np.ndarray:
    """Bring an array to (H, W) or (H, W, 3), dropping alpha."""
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
    arr = _squeeze_channels(np.asarray(arr), p)
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
    Image.fromarray(img).save(fh, format=fmt, **kwargs)


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


def check_writable_folder(folder: PathLike) -> Path:
    """Check that files can be created in ``folder`` (or in the folder that would hold it).

    Nothing is created: the nearest existing ancestor must be a writable directory.

    Raises:
        NotADirectoryError: a path component is a file.
        PermissionError: the folder (or the ancestor it would be created in) is not writable.
    """
    p = Path(folder)
    probe = p
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"'{p}': cannot create the output folder, '{probe}' is a file")
    where = "" if probe == p else f" (it would be created in '{probe}')"
    try:  # a real probe: permission bits do not tell about read-only mounts, /proc, or root
        with tempfile.TemporaryFile(dir=probe):  # unnamed where the OS allows, removed at once
            pass
    except OSError as exc:
        raise PermissionError(f"'{p}': output folder is not writable{where}: {exc.strerror or exc}") from None
    return p


def _resolved(path: PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name the same file (symbolic and hard links included)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return _resolved(a) == _resolved(b)


def is_within(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it, after resolving links."""
    p, f = _resolved(path), _resolved(folder)
    return p == f or f in p.parents


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


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


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


def _as_gray(arr: np.ndarray) -> np.ndarray:
    """float (H,W[,3]) -> (H,W) BT.601 luminance."""
    if arr.ndim == 2:
        return arr
    return (0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]).astype(np.float32)


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
        arr = _squeeze_channels(x, Path(f"<{role} array>"))
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
    ir_t = torch.from_numpy(_as_gray(ir_f).copy())[None, None]
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


@dataclass(frozen=True)
class PairPaths:
    """Paths of one infrared/visible pair found in a folder."""

    name: str
    ir: Path
    vis: Path


@dataclass
class PairScan:
    """What :func:`find_pairs` found.

    Attributes:
        ir_dir, vis_dir: the two modality folders.
        pairs: matched pairs, sorted by name.
        unmatched: image files present in only one modality folder.
        ambiguous: names with more than one file in the same folder (e.g. ``a.png`` and ``a.jpg``).
    """

    ir_dir: Path
    vis_dir: Path
    pairs: list[PairPaths]
    unmatched: list[Path]
    ambiguous: list[str]

    def __len__(self) -> int:
        return len(self.pairs)


def _image_files(folder: Path) -> dict[str, list[Path]]:
    """Relative stem (posix, no extension) -> files, recursing into subfolders (LLVIP's train/test)."""
    out: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            key = p.relative_to(folder).with_suffix("").as_posix()
            out.setdefault(key, []).append(p)
    return out


def find_modality_dirs(root: PathLike) -> tuple[Path, Path]:
    """Locate the infrared-like and visible-like subfolders of a dataset folder.

    Raises:
        FileNotFoundError: ``root`` does not exist or is not a directory.
        ValueError: no known pair of subfolder names is present.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"'{root}': dataset folder not found")
    if not root.is_dir():
        raise NotADirectoryError(f"'{root}': expected a dataset folder with infrared and visible subfolders")
    subdirs = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()}
    for ir_name, vis_name in MODALITY_DIR_PAIRS:
        if ir_name in subdirs and vis_name in subdirs:
            return subdirs[ir_name], subdirs[vis_name]
    known = ", ".join(f"{a}/{b}" for a, b in MODALITY_DIR_PAIRS)
    found = ", ".join(p.name for p in subdirs.values()) or "none"
    raise ValueError(
        f"'{root}': no infrared/visible subfolders found (subfolders: {found}); expected one of {known} "
        "(case-insensitive), or pass --ir DIR --vis DIR"
    )


def find_pairs(
    root: PathLike | None = None, ir_dir: PathLike | None = None, vis_dir: PathLike | None = None
) -> PairScan:
    """Find infrared/visible pairs, matched by file stem whatever the extension.

    Either give a dataset folder ``root`` (its modality subfolders are found by name, see
    ``MODALITY_DIR_PAIRS``), or the two folders explicitly.

    Raises:
        FileNotFoundError / ValueError: the folder is missing or has no modality subfolders.
    """
    if root is not None:
        ir_p, vis_p = find_modality_dirs(root)
    elif ir_dir is not None and vis_dir is not None:
        ir_p, vis_p = Path(ir_dir), Path(vis_dir)
        for p in (ir_p, vis_p):
            if not p.is_dir():
                raise FileNotFoundError(f"'{p}': folder not found")
    else:
        raise ValueError("find_pairs: give a dataset folder or both ir_dir and vis_dir")
    ir_files, vis_files = _image_files(ir_p), _image_files(vis_p)
    ambiguous = sorted(k for k, v in {**ir_files, **vis_files}.items()
                       if len(ir_files.get(k, [])) > 1 or len(vis_files.get(k, [])) > 1)
    pairs, unmatched = [], []
    for key in sorted(set(ir_files) | set(vis_files)):
        if key in ambiguous:
            continue
        if key in ir_files and key in vis_files:
            pairs.append(PairPaths(name=key, ir=ir_files[key][0], vis=vis_files[key][0]))
        else:
            unmatched.extend(ir_files.get(key, []) + vis_files.get(key, []))
    return PairScan(ir_dir=ir_p, vis_dir=vis_p, pairs=pairs, unmatched=sorted(unmatched), ambiguous=ambiguous)
