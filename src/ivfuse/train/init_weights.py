"""Starting a run from existing weights (``ivfuse train --init-from MODEL|FILE``) and shape checks.

The source is either the name of a registered model whose weights ship with the package (its
weight card's file, checked against the card's sha256) or a ``.safetensors`` file. Nothing is
ever unpickled: ``.pt``/``.pth``/``.ckpt``/``.bin`` files are refused. Every tensor of the file
must exist in the model being trained with the same shape, and the other way round; otherwise
the error names the file and the first tensor that does not fit. With ``partial`` (``--init-partial``)
the model may have tensors the file lacks, which keep their fresh initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from .._files import sha256_file

__all__ = ["InitSource", "check_state_fits", "load_init_weights", "read_safetensors", "resolve_init_source"]

_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")


@dataclass(frozen=True)
class InitSource:
    """Where initial weights come from.

    Attributes:
        spec: what the user gave (a model name or a path).
        path: the safetensors file.
        model: the registered model whose shipped weights these are ("" for a plain file).
        sha256: hex digest of the file.
    """

    spec: str
    path: Path
    model: str = ""
    sha256: str = ""

    def describe(self) -> str:
        """One line for logs and weight cards, e.g. ``fusionnet_cpu (shipped weights, sha256 1a2b3c4d5e6f)``."""
        what = f"{self.model} (shipped weights" if self.model else f"{self.path} (file"
        return f"{what}, sha256 {self.sha256[:12]})"


def resolve_init_source(spec: str, option: str = "--init-from") -> InitSource:
    """The :class:`InitSource` of ``spec`` (a registered model with shipped weights, or a .safetensors file).

    Raises:
        FileNotFoundError: neither an existing file nor a registered model.
        ValueError: a pickle file, a model without shipped weights, or a card digest mismatch.
    """
    from ..models import get_model_entry, list_models

    spec = str(spec).strip()
    if not spec:
        raise ValueError(f"{option}: give a registered model name or a .safetensors file")
    p = Path(spec).expanduser()
    if p.suffix.lower() in _PICKLE_SUFFIXES:
        raise ValueError(
            f"{option} '{spec}': only .safetensors files are read (pickle files can execute code when loaded); "
            "convert it first: python -c \"import torch, safetensors.torch as s; "
            f"s.save_file(torch.load('{spec}', weights_only=True), '{p.with_suffix('.safetensors')}')\""
        )
    if p.is_file():
        if p.suffix.lower() != ".safetensors":
            raise ValueError(f"{option} '{spec}': not a .safetensors file")
        p = p.resolve()
        return InitSource(spec, p, "", sha256_file(p))
    if p.suffix or "/" in spec or "\\" in spec:
        raise FileNotFoundError(f"{option} '{spec}': file not found")
    if spec not in list_models():
        raise FileNotFoundError(
            f"{option} '{spec}': no such file and no registered model of that name (see `ivfuse models`)"
        )
    entry = get_model_entry(spec)
    card = entry.card() if entry.trainable else None
    if card is None or not card.available():
        have = [n for n in list_models(pretrained=True) if get_model_entry(n).trainable]
        why = "it is training-free" if not entry.trainable else "no weights ship for it"
        raise ValueError(f"{option} {spec}: {why}; models with shipped weights: {', '.join(have) or 'none'}")
    path = card.path().resolve()
    digest = sha256_file(path)
    if card.sha256 and digest != card.sha256:
        raise ValueError(
            f"{option} {spec}: '{path}' does not match the sha256 of its weight card (changed or corrupted)"
        )
    return InitSource(spec, path, spec, digest)


def read_safetensors(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; an unreadable file is a one-line ``ValueError`` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what}: '{p}' not found")
    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{what}: '{p}' is not a readable safetensors file ({reason})") from exc


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def check_state_fits(model: nn.Module, state: Mapping[str, torch.Tensor], what: str, model_name: str,
                     partial: bool = False) -> list[str]:
    """Raise a one-line ``ValueError`` unless ``state`` has exactly ``model``'s tensors with its shapes.

    Args:
        model: the module the state is meant for.
        state: tensors by state-dict key.
        what: names the source in the message, e.g. ``"--init-from 'w.safetensors'"``.
        model_name: the model's registered name, for the message.
        partial: allow tensors of the model that ``state`` lacks (not the other way round).

    Returns:
        The model's tensors that ``state`` lacks (empty unless ``partial``).
    """
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    if missing and not partial:
        raise ValueError(f"{what}: tensor '{missing[0]}' of model '{model_name}' is missing there "
                         "(--init-partial lets such tensors keep their fresh initialisation)")
    if len(missing) == len(own):
        raise ValueError(f"{what}: not one tensor of model '{model_name}' is there")
    for key, t in own.items():
        if key in state and tuple(state[key].shape) != tuple(t.shape):
            raise ValueError(
                f"{what}: tensor '{key}' is {_shape(state[key])} there but {_shape(t)} in model '{model_name}'"
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise ValueError(f"{what}: tensor '{extra[0]}' there is not part of model '{model_name}'")
    return missing


def load_init_weights(model: nn.Module, source: InitSource, model_name: str, option: str = "--init-from",
                      partial: bool = False) -> list[str]:
    """Copy the weights of ``source`` into ``model`` after checking that every tensor fits.

    Returns the model's tensors the file lacks, left as initialised (only with ``partial``).
    """
    what = f"{option} '{source.path}'"
    state = read_safetensors(source.path, what)
    missing = check_state_fits(model, state, what, model_name, partial)
    model.load_state_dict(state, strict=not missing)
    return missing
