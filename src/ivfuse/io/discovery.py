"""Pair discovery: infrared/visible subfolders of a dataset folder, files matched by stem.

:func:`find_pairs` finds pairs in a dataset folder laid out as TNO, RoadScene, MSRS, M3FD,
LLVIP or the Harvard medical sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .formats import IMAGE_EXTENSIONS, PathLike

__all__ = ["MODALITY_DIR_PAIRS", "PairPaths", "PairScan", "find_modality_dirs", "find_pairs"]

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
