"""Imports the modules that register the built-in models."""

import importlib

_MODULES = ("classical", "tiny", "pomai", "fusionnet", "fgfusion")

for _name in _MODULES:
    try:
        importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as _exc:  # a paper module not written yet
        if _exc.name != f"{__package__}.{_name}":
            raise
