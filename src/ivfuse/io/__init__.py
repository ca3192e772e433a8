"""Image reading and writing, colour handling at the edges, and pair discovery.

Inside ivfuse every image is float32 in [0, 1]; this package is where files become arrays and
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

One module per concern: :mod:`.image` (read and write), :mod:`.pair` (pairs and colour),
:mod:`.discovery` (pairs in folders), :mod:`.formats` (extensions, output format checks) and
:mod:`.paths` (output folders, path identity); every public name is importable from here.
"""

from .discovery import MODALITY_DIR_PAIRS, PairPaths, PairScan, find_modality_dirs, find_pairs
from .formats import IMAGE_EXTENSIONS, PathLike, check_output_format
from .image import ImageReadError, as_gray, read_array, read_image, squeeze_channels, to_float, write_image
from .paths import check_writable_folder, is_within, same_file

# The pair names need torch; they load on first use, so that reading, writing, discovery and
# as_gray (used by temporal, analysis and registration) do not import torch.
_PAIR_NAMES = ("Pair", "PairError", "load_pair", "restore_color")

__all__ = [
    "IMAGE_EXTENSIONS",
    "MODALITY_DIR_PAIRS",
    "PathLike",
    "check_output_format",
    "check_writable_folder",
    "is_within",
    "same_file",
    "ImageReadError",
    "PairError",
    "Pair",
    "PairPaths",
    "PairScan",
    "as_gray",
    "read_array",
    "read_image",
    "squeeze_channels",
    "write_image",
    "to_float",
    "load_pair",
    "restore_color",
    "find_pairs",
    "find_modality_dirs",
]

#: The old private spelling of :func:`as_gray`, kept so that outside code written against it still runs.
_as_gray = as_gray


def __getattr__(name: str):
    if name in _PAIR_NAMES:
        from . import pair

        value = getattr(pair, name)
        globals()[name] = value  # later look-ups find it without coming here
        return value
    raise AttributeError(f"module 'ivfuse.io' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
