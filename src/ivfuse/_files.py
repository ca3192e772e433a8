"""Atomic file writing and file digests, shared by every module that writes or checks files.

* :func:`atomic_write` writes a file so that it appears complete or not at all.
* :func:`umask_mode` is the permission set a newly created file normally gets.
* :func:`sha256_file` is the hex SHA-256 digest of a file's content.
* :data:`FUSED_MARKER` is the file written beside images a model fused (bench, downstream runs): which
  model and weights made them, so a later run knows whether it may keep them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Union

__all__ = ["FUSED_MARKER", "atomic_write", "sha256_file", "umask_mode"]

#: Written beside the images a model fused: ``{"model": name, "weights": identity}`` as JSON.
FUSED_MARKER = ".ivfuse_fused.json"

PathLike = Union[str, os.PathLike]
Writer = Callable[[BinaryIO], object]


def umask_mode() -> int:
    """Permissions a newly created file gets normally (a private temporary file starts as 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: PathLike, data: Union[bytes, str, Writer], mode: int | None = None) -> Path:
    """Write ``path`` atomically: a crash or an interruption leaves the old file or the complete new one.

    The content goes to ``.<name>.<random>.part`` in the destination folder (its name is known
    before the file is created, so an interruption at any point can remove it), is flushed and
    synced, gets its permissions and is renamed over ``path``. On any exception, KeyboardInterrupt
    included, the temporary file is removed and ``path`` is left as it was.

    Args:
        path: destination; its folder is created if needed.
        data: bytes, text (written as UTF-8, newlines untranslated), or a callable that writes the
            content to the binary file handle it is given.
        mode: permission bits of the new file; by default those the umask gives new files.

    Returns:
        The written path.
    """
    p = Path(path)
    if not (isinstance(data, (bytes, bytearray, memoryview, str)) or callable(data)):
        raise TypeError(f"'{p}': atomic_write needs bytes, str or a callable, got {type(data).__name__}")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.parent / f".{p.name}.{secrets.token_hex(6)}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never an existing file
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, str):
                fh.write(data.encode("utf-8"))
            elif isinstance(data, (bytes, bytearray, memoryview)):
                fh.write(data)
            else:
                data(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, umask_mode() if mode is None else mode)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 digest of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
