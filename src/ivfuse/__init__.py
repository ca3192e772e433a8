"""ivfuse: infrared-visible and medical image fusion.

>>> import ivfuse
>>> "gff" in ivfuse.list_models()
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import DEFAULT_MODEL, FolderResult, fuse, fuse_folder
    from .io import find_pairs, load_pair, read_image, write_image
    from .metrics import evaluate
    from .models import create_model, list_models
    from .registration import register

# The public names and the submodule each comes from, imported on first use: ``import ivfuse``
# stays cheap, and ``import ivfuse.metrics`` (numpy and scipy only) does not pull in torch
# through api, io or models.
_LAZY = {
    "DEFAULT_MODEL": "api",
    "FolderResult": "api",
    "fuse": "api",
    "fuse_folder": "api",
    "find_pairs": "io",
    "load_pair": "io",
    "read_image": "io",
    "write_image": "io",
    "create_model": "models",
    "list_models": "models",
    "evaluate": "metrics",
    "register": "registration",  # needs OpenCV (the cv extra), imported only when used
}

__all__ = [
    "__version__",
    "DEFAULT_MODEL",
    "FolderResult",
    "fuse",
    "fuse_folder",
    "create_model",
    "list_models",
    "find_pairs",
    "load_pair",
    "read_image",
    "write_image",
    "evaluate",
    "register",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value  # later look-ups find it without coming here
        return value
    raise AttributeError(f"module 'ivfuse' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
