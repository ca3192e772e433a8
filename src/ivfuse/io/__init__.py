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
from .pair import Pair, PairError, load_pair, restore_color
from .paths import check_writable_folder, is_within, same_file

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
