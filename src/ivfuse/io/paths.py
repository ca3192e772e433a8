"""Output folders and path identity: can files be created there, do two paths name the same file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .formats import PathLike

__all__ = ["check_writable_folder", "is_within", "same_file"]


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
