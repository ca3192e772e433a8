"""Optional dependencies: import them where they are used, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError, ValueError):
    """An optional dependency is not installed; the message says which extra brings it.

    A ValueError too, so that the command line reports it as one line.
    """


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install 'ivfuse[extra]'``.

    Args:
        module: the importable name (e.g. ``"av"``).
        extra: the ivfuse extra that installs it (e.g. ``"video"``).
        what: what needs it, for the message (e.g. ``"reading videos"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{what} needs the '{module}' package: pip install 'ivfuse[{extra}]'") from exc
