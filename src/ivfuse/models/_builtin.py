"""Imports the modules that register the built-in models."""

from . import classical  # noqa: F401
