"""ivfuse: infrared-visible and medical image fusion.

>>> import ivfuse
>>> "gff" in ivfuse.list_models()
True
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import DEFAULT_MODEL, FolderResult, fuse, fuse_folder
from .io import find_pairs, load_pair, read_image, write_image
from .models import create_model, list_models

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
]


def __getattr__(name: str):
    if name == "evaluate":  # metrics pull in scipy; import them on first use
        from .metrics import evaluate

        return evaluate
    raise AttributeError(f"module 'ivfuse' has no attribute '{name}'")
