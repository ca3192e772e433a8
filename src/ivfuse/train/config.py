"""Training configuration: dataclasses, TOML and ``key=value`` overrides.

A run is described by one :class:`TrainConfig`. Recipes (see :mod:`ivfuse.train.recipes`) build
it per model and preset; a TOML file then overrides fields, and the command line overrides the
file. Only fields that exist may be set: a typo is an error, not a silently ignored key.

The pieces:

* :class:`DataConfig`: crop, batch, augmentation, where labels come from, pseudo-labels (defined
  with the data pipeline in :mod:`ivfuse.data`, importable from here too).
  The weak-label study's box degradation is ``data.degrade``; its old spellings in the FusionNet
  loss's kwargs (``roi_keep``, ``roi_jitter``, ``roi_seed``) are moved there when a
  configuration is read (:func:`move_legacy_settings`).
* :class:`LossSpec`: a loss registered with :func:`ivfuse.losses.register_loss` plus its kwargs.
* :class:`OptimizerConfig` and :class:`ScheduleConfig`: per stage.
* :class:`Stage`: name, length (steps or epochs), which parameters train, optimizer, schedule.
* :class:`TrainConfig`: all of the above plus seed, device, precision, checkpoint/log/validation
  cadence.

Example TOML (every table and key optional)::

    seed = 1
    [data]
    crop = 96
    batch_size = 8
    [loss]
    name = "fusion"
    kwargs = { ssim = 1.0, intensity = 1.0, gradient = 2.0 }
    [[stages]]          # replaces the whole stage list
    name = "main"
    length = 2000
    [stages.optimizer]
    lr = 5e-4
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin, get_type_hints

from ..data import DataConfig, PseudoLabelConfig

__all__ = [
    "ConfigError",
    "DataConfig",
    "LossSpec",
    "OptimizerConfig",
    "PseudoLabelConfig",
    "ScheduleConfig",
    "Stage",
    "TrainConfig",
    "apply_dotted",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_toml",
    "move_legacy_settings",
]


class ConfigError(ValueError):
    """A configuration file or override names an unknown field or gives a value of the wrong type."""


@dataclass
class LossSpec:
    """A criterion: a name registered with :func:`ivfuse.losses.register_loss` and its kwargs."""

    name: str = "fusion"
    kwargs: dict = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    """Optimizer of one stage.

    Attributes:
        name: "adam", "adamw" or "sgd".
        lr: base learning rate.
        weight_decay: L2 (adam, sgd) or decoupled (adamw) weight decay.
        betas: Adam's betas.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        grad_clip: clip the global gradient norm to this (0: off).
    """

    name: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    momentum: float = 0.9
    nesterov: bool = False
    grad_clip: float = 0.0


@dataclass
class ScheduleConfig:
    """Learning-rate schedule of one stage, a pure function of the step within the stage.

    Lengths (``step_size``, ``milestones``, ``warmup``) are in the stage's unit (steps or epochs).

    Attributes:
        name: "constant"; "step" (multiply by ``gamma`` every ``step_size``); "multistep"
            (multiply by ``gamma`` at each milestone); "cosine" (from lr to ``min_lr`` over the
            stage); "poly" (``(1 - t) ** power``).
        step_size, gamma, milestones: for "step" and "multistep".
        min_lr: floor of "cosine" and "poly".
        power: exponent of "poly".
        warmup: linear warm-up from 0 over this many units (any schedule).
    """

    name: str = "constant"
    step_size: int = 0
    gamma: float = 0.5
    milestones: list = field(default_factory=list)
    min_lr: float = 0.0
    power: float = 0.9
    warmup: int = 0


@dataclass
class Stage:
    """One stage of a run.

    Attributes:
        name: passed to ``model.set_stage(name)`` before the stage starts, if the model has it.
        length: how long the stage runs, in ``unit``.
        unit: "steps" or "epochs" (an epoch is ``len(dataset) // (batch_size * world_size)``
            steps).
        train: module-name prefixes whose parameters train (``"*"`` or ``""``: all). A prefix
            matches a parameter ``p`` when ``p == prefix`` or ``p.startswith(prefix + ".")``.
        freeze: prefixes removed from ``train`` (e.g. train everything except ``["micm"]``).
        optimizer: a fresh optimizer over the stage's trainable parameters.
        schedule: the stage's learning-rate schedule.
        loss: the stage's criterion; None uses :attr:`TrainConfig.loss`.

    Frozen parameters get ``requires_grad=False``, and every submodule whose parameters are all
    frozen is put in eval mode (so its batch-norm statistics and dropout are fixed too).
    """

    name: str = "main"
    length: int = 1000
    unit: str = "steps"
    train: list = field(default_factory=lambda: ["*"])
    freeze: list = field(default_factory=list)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: Optional[LossSpec] = None  # noqa: UP045 (resolved by get_type_hints, must work on Python 3.9)


@dataclass
class TrainConfig:
    """Everything a run needs.

    Attributes:
        model: registered model name (:func:`ivfuse.models.list_models`).
        model_kwargs: passed to :func:`ivfuse.models.create_model`.
        preset: the preset the recipe built this from (informational).
        data: the training data.
        loss: default criterion of every stage.
        stages: the run, in order.
        seed: seeds the model initialisation, the data order and crops, and every step.
        device: "auto", "cpu", "cuda", "cuda:N" (under torchrun: the local rank's GPU).
        amp: mixed precision on CUDA: "auto" (bf16 if supported, else fp16), "bf16", "fp16",
            "off". Always off on CPU.
        threads: torch intra-op threads on CPU (0: leave torch's default).
        checkpoint_every: steps between checkpoints (0: only at stage ends and the end).
        keep_checkpoints: how many step checkpoints to keep (stage-end ones are kept).
        log_every: steps between log rows.
        val_path: dataset folder for validation ("" for none).
        val_every: steps between validations (0: only at the end when ``val_path`` is set).
        val_max_pairs: validate on at most this many pairs (sorted by name).
        val_metrics: :func:`ivfuse.metrics.evaluate` metric names; missing or failing ones are
            skipped.
        find_unused_parameters: passed to DDP. True by default because models often return maps
            (or skip modules) that a loss does not use, which DDP otherwise rejects; set False for
            speed when every trainable parameter gets a gradient at every step.
        description: free text copied into the weight card.
        init_from: start from these weights instead of a random initialisation: a registered
            model whose weights ship (e.g. "fusionnet_cpu") or a ``.safetensors`` file
            (``ivfuse train --init-from``). Used when the run starts at step 0; a resumed run
            continues from its checkpoint.
        init_partial: with ``init_from``, let the model have tensors the file lacks (a larger variant
            grown from smaller weights, e.g. ``pomai_cpu`` with ``detail_hidden``): they keep their fresh
            initialisation and are named in the log. A tensor of the file the model lacks, or one of
            another shape, is still an error (``ivfuse train --init-partial``).
        imports: Python modules imported before the run is built when a model or loss it names
            is not registered yet (plug-ins that call ``register_model``/``register_loss``). A
            run records there the modules outside ivfuse that define its model and losses, so
            that ``--resume`` in a new process finds them.
    """

    model: str = ""
    model_kwargs: dict = field(default_factory=dict)
    preset: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossSpec = field(default_factory=LossSpec)
    stages: list = field(default_factory=lambda: [Stage()])
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    threads: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    val_path: str = ""
    val_every: int = 0
    val_max_pairs: int = 8
    val_metrics: list = field(default_factory=lambda: ["EN", "SD", "SF", "AG", "Qabf", "SSIM"])
    find_unused_parameters: bool = True
    description: str = ""
    init_from: str = ""
    init_partial: bool = False
    imports: list = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# dict <-> dataclass
# --------------------------------------------------------------------------------------------

# Element types of list fields that hold dataclasses.
_LIST_ITEM_TYPES: dict[tuple[type, str], type] = {(TrainConfig, "stages"): Stage}


def config_to_dict(cfg: Any) -> dict:
    """A JSON/TOML-friendly dict of a config dataclass (tuples become lists)."""
    d = asdict(cfg)
    return json.loads(json.dumps(d))


def _field_type(cls: type, name: str) -> Any:
    return get_type_hints(cls)[name]


def _coerce(value: Any, typ: Any, where: str, owner: type | None = None, name: str = "") -> Any:
    """Convert a TOML/JSON value to the declared field type, or raise ConfigError."""
    origin = get_origin(typ)
    if origin is Union:  # Optional[X]
        args = [a for a in get_args(typ) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where, owner, name)
    if dataclasses.is_dataclass(typ):
        if isinstance(value, typ):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return _from_mapping(typ, value, where)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if typ is tuple or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    if typ is list or origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = _LIST_ITEM_TYPES.get((owner, name)) if owner is not None else None
        if item is not None:
            return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return list(value)
    if typ is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    return value


def _from_mapping(cls: type, data: Mapping, where: str) -> Any:
    obj = cls()
    return _merge_into(obj, data, where)


def _merge_into(obj: Any, data: Mapping, where: str) -> Any:
    """Override fields of dataclass ``obj`` in place from a (nested) mapping."""
    cls = type(obj)
    known = {f.name for f in fields(cls)}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            raise ConfigError(f"unknown setting '{path}'; known: {', '.join(sorted(known))}")
        typ = _field_type(cls, key)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            _merge_into(current, value, path)  # tables merge field by field
        else:
            setattr(obj, key, _coerce(value, typ, path, cls, key))
    return obj


# Old spellings: the FusionNet loss's weak-label kwargs, now the data pipeline's ``data.degrade`` fields.
_MOVED_LOSS_KWARGS = {"roi_keep": ("keep", float), "roi_jitter": ("jitter", float), "roi_seed": ("seed", int)}
_MOVED_FROM_LOSS = "fusionnet_target_aware"


def move_legacy_settings(cfg: TrainConfig) -> TrainConfig:
    """Move settings from their old places to their new ones, in place; returns ``cfg``.

    ``roi_keep``, ``roi_jitter`` and ``roi_seed`` in the kwargs of a ``fusionnet_target_aware``
    loss (the run's or a stage's) become ``data.degrade.keep``, ``.jitter`` and ``.seed``: the box
    degradation is a seeded transform of the data (:class:`ivfuse.data.DegradeBoxes`), so a
    resumed run sees the same boxes. Applied by :func:`config_from_dict`, :func:`apply_overrides`
    and :func:`apply_dotted`, so old TOML files, ``--set loss.kwargs.roi_jitter=...`` and old runs'
    ``config.json`` keep working.
    """
    specs = [("loss", cfg.loss)]
    specs += [(f"stages.{i}.loss", st.loss) for i, st in enumerate(cfg.stages) if getattr(st, "loss", None)]
    for where, spec in specs:
        if spec.name != _MOVED_FROM_LOSS:
            continue
        for old, (new, typ) in _MOVED_LOSS_KWARGS.items():
            if old in spec.kwargs:
                setattr(cfg.data.degrade, new, _coerce(spec.kwargs.pop(old), typ, f"{where}.kwargs.{old}"))
    return cfg


def config_from_dict(data: Mapping) -> TrainConfig:
    """Build a :class:`TrainConfig` from a dict (e.g. a run's saved ``config.json``)."""
    return move_legacy_settings(_from_mapping(TrainConfig, data, ""))


def apply_overrides(cfg: TrainConfig, data: Mapping) -> TrainConfig:
    """Return a copy of ``cfg`` with a nested mapping (e.g. a parsed TOML file) applied.

    Tables merge field by field; lists (including ``stages``) are replaced whole.
    """
    out = copy.deepcopy(cfg)
    return move_legacy_settings(_merge_into(out, data, ""))


def load_toml(path: str | Path) -> dict:
    """Parse a TOML file (``tomllib`` on Python >= 3.11, else the ``tomli`` package)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"'{p}': config file not found")
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError("reading TOML on Python < 3.11 needs the 'tomli' package") from exc
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"'{p}': not valid TOML ({exc})") from exc


def parse_value(text: str) -> Any:
    """A command-line value as TOML (numbers, booleans, lists, quoted strings), else the raw string."""
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except Exception:  # noqa: BLE001 (any parse failure means: a bare string)
        return text


def apply_dotted(cfg: TrainConfig, assignments: list[str]) -> TrainConfig:
    """Apply ``key.sub=value`` overrides, e.g. ``data.crop=64`` or ``stages.1.optimizer.lr=1e-5``.

    Values are read as TOML literals (``1e-4``, ``true``, ``[1, 2]``, ``{ssim = 1.0}``); anything
    else is taken as a string. A number after a list field indexes into it.
    """
    out = copy.deepcopy(cfg)
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"override '{item}': expected KEY=VALUE, e.g. data.crop=64")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        value = parse_value(text.strip())
        obj: Any = out
        for i, part in enumerate(parts[:-1]):
            where = ".".join(parts[: i + 1])
            if isinstance(obj, list):
                if not part.isdigit() or int(part) >= len(obj):
                    raise ConfigError(f"override '{item}': '{where}' is not an index below {len(obj)}")
                obj = obj[int(part)]
            elif isinstance(obj, dict):
                obj = obj.setdefault(part, {})
            elif dataclasses.is_dataclass(obj) and part in {f.name for f in fields(obj)}:
                nxt = getattr(obj, part)
                if nxt is None and part == "loss":  # Stage.loss: start from an empty spec
                    nxt = LossSpec()
                    setattr(obj, part, nxt)
                obj = nxt
            else:
                raise ConfigError(f"override '{item}': unknown setting '{where}'")
        last = parts[-1]
        if isinstance(obj, dict):
            obj[last] = value
        elif isinstance(obj, list):
            raise ConfigError(f"override '{item}': cannot assign to a list element directly")
        else:
            _merge_into(obj, {last: value}, ".".join(parts[:-1]))
    return move_legacy_settings(out)
