"""Model registry, weight cards and safetensors checkpoint loading.

A model variant is a plain function decorated with :func:`register_model`; it builds the module
from keyword arguments. Users call :func:`create_model` and :func:`list_models`::

    @register_model(weights=WeightCard(file="pomai_cpu.safetensors", ...))
    def pomai_cpu(**kwargs) -> FusionModel:
        return PoMAI(dim=16, **kwargs)

    model = create_model("pomai_cpu", pretrained=True)

Shipped weights live in ``ivfuse/weights/`` as safetensors next to a JSON card of the same
stem; nothing is ever unpickled and nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .._files import atomic_write, sha256_file
from .._registry import Registry

__all__ = [
    "MODELS",
    "WeightCard",
    "ModelEntry",
    "register_model",
    "create_model",
    "MissingWeightsError",
    "list_models",
    "get_model_entry",
    "model_identity",
    "load_checkpoint",
    "save_weights",
    "weights_dir",
    "count_parameters",
]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def weights_dir() -> Path:
    """Folder of the weights shipped inside the package."""
    return WEIGHTS_DIR


@dataclass(frozen=True)
class WeightCard:
    """Provenance of a set of weights, in the spirit of torchvision's weight enums.

    Attributes:
        file: safetensors file name inside ``ivfuse/weights`` (or an absolute path).
        sha256: hex digest of that file; checked on load when set.
        training_data: what the weights were trained on.
        steps: optimisation steps.
        input_convention: what the network expects, e.g. "ir gray + visible Y, (B,1,H,W) in [0,1]".
        metrics: headline numbers the weights reached, e.g. {"tno/vifb/Qabf": 0.52}.
        params: parameter count.
        gflops: GFLOPs at 640x480.
        notes: anything else a user must know.
        model_kwargs: constructor arguments the weights are used with (a run's ``model_kwargs``, or an
            inference setting chosen after training, e.g. FusionNet's ``detail_gain``); :func:`create_model`
            builds the shipped model with them, a training run from the preset does not.
        extra: every other field of the card's JSON (timings, training command, baselines, ...),
            kept as read so that a read/write round trip loses nothing; written after the fields above.
    """

    file: str
    sha256: str = ""
    training_data: str = ""
    steps: int = 0
    input_convention: str = "infrared gray and visible luminance (BT.601 Y), (B,1,H,W) float32 in [0,1]"
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: int = 0
    gflops: float = 0.0
    notes: str = ""
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def path(self) -> Path:
        p = Path(self.file)
        return p if p.is_absolute() else WEIGHTS_DIR / p

    def available(self) -> bool:
        return self.path().is_file()

    def to_dict(self) -> dict[str, Any]:
        """The card as its JSON holds it: the named fields, then the ``extra`` ones."""
        d = asdict(self)
        d["metrics"] = dict(self.metrics)
        d["model_kwargs"] = dict(self.model_kwargs)
        if not d["model_kwargs"]:
            del d["model_kwargs"]  # cards without one read and write as before
        extra = d.pop("extra")
        return {**d, **{k: v for k, v in extra.items() if k not in d}}

    @classmethod
    def from_json(cls, path: str | Path) -> "WeightCard":
        """Read a card; fields this class does not name go to ``extra``."""
        data = json.loads(Path(path).read_text())
        known = {f for f in cls.__dataclass_fields__} - {"extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})


@dataclass
class ModelEntry:
    """A registered model variant."""

    name: str
    fn: Callable[..., nn.Module]
    weights: WeightCard | None
    trainable: bool
    description: str
    #: Modules the preset grew after weights had been trained without them: a tensor of the module ->
    #: the constructor arguments that leave it out (so a file without that tensor loads by name).
    grown: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def card(self) -> WeightCard | None:
        """The weight card, read from ``weights/<name>.json`` when the package ships one."""
        if self.weights is not None:
            return self.weights
        card_file = WEIGHTS_DIR / f"{self.name}.json"
        if card_file.is_file():
            return WeightCard.from_json(card_file)
        return None

    def weights_status(self) -> str:
        """'training-free', 'available', or 'none'."""
        if not self.trainable:
            return "training-free"
        card = self.card()
        return "available" if card is not None and card.available() else "none"


#: The registered model variants: name -> :class:`ModelEntry` (a function registered again replaces its entry).
MODELS: Registry[ModelEntry] = Registry("model", same=lambda old, new: old.fn is new.fn)
_REGISTRY = MODELS  # the old private name, still used by tests that register and drop a model


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    name: str | None = None,
    weights: WeightCard | None = None,
    trainable: bool = True,
    grown: Mapping[str, Mapping[str, Any]] | None = None,
):
    """Register a model-building function under its name (or ``name``).

    Usable bare (``@register_model``) or with arguments (``@register_model(trainable=False)``).
    ``grown``: see :attr:`ModelEntry.grown`.
    """

    def deco(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or f.__name__
        doc = (f.__doc__ or "").strip().splitlines()
        MODELS.register(key, ModelEntry(key, f, weights, trainable, doc[0] if doc else "", dict(grown or {})))
        return f

    return deco(fn) if fn is not None else deco


def _ensure_builtin() -> None:
    # Importing the model modules runs their @register_model decorators.
    from . import _builtin  # noqa: F401


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Names of registered models matching a shell-style pattern, sorted.

    Args:
        pattern: e.g. ``"pomai*"``.
        pretrained: only models whose weights ship with the package (training-free models count).
    """
    _ensure_builtin()
    names = MODELS.names(pattern)
    if pretrained:
        names = [n for n in names if MODELS[n].weights_status() in ("available", "training-free")]
    return names


def get_model_entry(name: str) -> ModelEntry:
    """The registered entry of ``name``.

    Raises:
        ValueError: unknown name; the message names close matches and every registered model.
    """
    _ensure_builtin()
    return MODELS.get(name)


def model_identity(name: str, checkpoint: str | Path | None = None) -> str:
    """What identifies a model's output: the sha256 of ``checkpoint`` when given, else of the shipped
    weights, or 'training-free'."""
    if checkpoint is not None:
        return sha256_file(checkpoint)
    card = get_model_entry(name).card()
    if card is None or not card.sha256:
        return "training-free"
    if card.model_kwargs:  # the same file used with other arguments fuses differently
        return f"{card.sha256} {json.dumps(dict(card.model_kwargs), sort_keys=True)}"
    return card.sha256


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    strict: bool = True,
    sha256: str = "",
    key_filter: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> nn.Module:
    """Load safetensors weights into ``model``.

    Args:
        model: the module to fill.
        path: a ``.safetensors`` file. Pickle-based files (.pt, .pth, .ckpt, .bin) are refused:
            they can run arbitrary code when loaded.
        strict: require the keys to match exactly.
        sha256: expected digest of the file, checked when given.
        key_filter: maps an original checkpoint's state dict onto this model's names (for weights
            converted from other codebases).

    Raises:
        FileNotFoundError, ValueError: missing file, wrong format, digest or key mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"'{p}': checkpoint not found")
    if p.suffix.lower() != ".safetensors":
        raise ValueError(
            f"'{p}': only .safetensors checkpoints are loaded (pickle files can execute code); convert it with "
            "safetensors.torch.save_file(torch.load(f, weights_only=True), 'model.safetensors')"
        )
    if sha256 and sha256_file(p) != sha256:
        raise ValueError(f"'{p}': sha256 does not match the weight card (file changed or corrupted)")
    try:
        state = load_file(str(p))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"'{p}': not a readable safetensors file ({exc})") from exc
    if key_filter is not None:
        state = key_filter(state)
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
             for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise ValueError(
            f"'{p}': weights do not fit {type(model).__name__}: shape mismatch for {wrong[:4]} "
            "(was it saved from a different variant?)"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if strict and (missing or unexpected):
        raise ValueError(
            f"'{p}': weights do not fit {type(model).__name__}: missing {list(missing)[:8]}, "
            f"unexpected {list(unexpected)[:8]} (was it saved from a different variant?)"
        )
    return model


def checkpoint_model_kwargs(path: str | Path, name: str = "") -> dict[str, Any]:
    """The constructor arguments a safetensors file records in its metadata (``"model_kwargs"``, JSON).

    ``{}`` when the file records none, records them for another model than ``name``, or cannot be
    read (:func:`load_checkpoint` then reports the problem).

    Raises:
        ValueError: the recorded arguments are not a JSON object.
    """
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if p.suffix.lower() != ".safetensors" or not p.is_file():
        return {}
    try:
        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
            keys = set(fh.keys())
    except (SafetensorError, OSError):
        return {}
    if name and meta.get("model") not in (None, name):
        return {}  # recorded for another model
    kwargs: dict[str, Any] = {}
    if name and keys:
        _ensure_builtin()
    if name and keys and name in MODELS:  # a preset that grew a module since the file was trained
        for tensor, args in get_model_entry(name).grown.items():
            if tensor not in keys:
                kwargs.update(args)
    text = meta.get("model_kwargs")
    if not text:
        return kwargs
    try:
        recorded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"'{p}': its metadata's model_kwargs is not JSON ({exc})") from exc
    if not isinstance(recorded, dict):
        raise ValueError(f"'{p}': its metadata's model_kwargs is not a JSON object: {text[:80]}")
    return {**kwargs, **recorded}


def save_weights(model: nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Save a model's state dict as safetensors, atomically."""
    from safetensors.torch import save

    p = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(p, save(state, metadata=dict(metadata or {})))


def create_model(
    name: str,
    pretrained: bool | None = None,
    checkpoint_path: str | Path | None = None,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        pretrained: ``None`` (default): load the weights shipped with the package when they exist
            and the model is built as registered (no constructor ``kwargs``); a model without
            shipped weights, or one built with other arguments, starts from random weights.
            ``True``: load the shipped weights (error if there are none). ``False``: random weights.
            The shipped model is built with its weight card's ``model_kwargs`` (``kwargs`` override them).
        checkpoint_path: load these safetensors weights instead (takes precedence). Without ``kwargs``
            the model is built with the constructor arguments the file records (``ivfuse train`` writes
            a run's ``model_kwargs`` into the file's metadata), so a trained variant loads by name.
        device: move the model there.
        **kwargs: passed to the model's constructor (e.g. ablation switches).

    Returns:
        The model in eval mode.

    Raises:
        MissingWeightsError: ``pretrained=True`` and no weights ship for this model.
    """
    entry = get_model_entry(name)
    if checkpoint_path is not None and not kwargs:
        kwargs = checkpoint_model_kwargs(checkpoint_path, name)
    card = None
    if checkpoint_path is None and entry.trainable and (pretrained or (pretrained is None and not kwargs)):
        card = entry.card()
        if card is None or not card.available():
            if pretrained:
                have = [n for n in list_models(pretrained=True) if MODELS[n].trainable]
                raise MissingWeightsError(name, have)
            card = None
    model = entry.fn(**({**card.model_kwargs, **kwargs} if card is not None else kwargs))
    if checkpoint_path is not None:
        load_checkpoint(model, checkpoint_path)
    elif card is not None:
        load_checkpoint(model, card.path(), sha256=card.sha256)
    model.eval()
    if device is not None:
        model.to(device)
    return model


class MissingWeightsError(ValueError):
    """A model's shipped weights were asked for, and none ship with the package.

    Attributes:
        model: the model name.
        available: the trainable models whose weights do ship.
    """

    def __init__(self, model: str, available: list[str]) -> None:
        self.model = model
        self.available = list(available)
        super().__init__(
            f"model '{model}' has no shipped weights; give a safetensors checkpoint (models with weights: "
            f"{', '.join(self.available) or 'none yet'})"
        )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
