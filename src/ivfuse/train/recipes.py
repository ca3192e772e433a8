"""Training recipes: a function per model family that returns the :class:`TrainConfig` of a preset.

A recipe is registered for a shell-style model-name pattern::

    from ivfuse.train.config import LossSpec, OptimizerConfig, ScheduleConfig, Stage
    from ivfuse.train.recipes import base_config, register_recipe

    @register_recipe("pomai*")
    def pomai_recipe(preset: str) -> TrainConfig:
        cfg = base_config(preset)            # generic data/cadence settings of that preset
        cfg.loss = LossSpec("fusion", {"ssim": 5.0, "mse": 1.0, "intensity": 1.0, "gradient": 10.0})
        cfg.stages = [Stage("stage1", 80, unit="epochs", freeze=["micm"], ...),
                      Stage("stage2", 20, unit="epochs", train=["micm"], ...)]
        return cfg

The function takes the preset name (and, if it declares a second parameter, the model name) and
raises ``ValueError`` for presets it does not know. Every recipe should offer ``"paper"`` (the
paper's crop, batch, optimizer, schedule, epochs and loss weights) and ``"cpu"`` (reaches a
useful model on two CPU cores within an hour).

Lookup: an exact model name wins, then the longest matching pattern; models no recipe matches get
:func:`default_recipe` (SSIM + intensity-to-max + gradient-to-max, one stage, all parameters).

The paper models' recipes live in ``recipe_pomai.py``, ``recipe_fusionnet.py`` and
``recipe_fgfusion.py`` next to this file; they are imported on first lookup when present, and by
:func:`ensure_registered`, which every run (new or resumed) calls before it builds anything: a run
resumed from its saved ``config.json`` never looks its recipe up, yet needs the losses the recipe
modules register.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import inspect
from dataclasses import dataclass
from typing import Callable

from .._registry import Registry
from .config import DataConfig, LossSpec, OptimizerConfig, ScheduleConfig, Stage, TrainConfig

__all__ = [
    "PRESETS",
    "RECIPES",
    "ablated_config",
    "RecipeEntry",
    "base_config",
    "default_recipe",
    "ensure_registered",
    "get_recipe",
    "list_recipes",
    "make_config",
    "plugin_modules",
    "register_recipe",
]

PRESETS = ("paper", "cpu")

_RECIPE_MODULES = ("recipe_pomai", "recipe_fusionnet", "recipe_fgfusion")


@dataclass
class RecipeEntry:
    """A registered recipe."""

    pattern: str
    fn: Callable[..., TrainConfig]
    presets: tuple[str, ...]

    def __call__(self, preset: str, model: str) -> TrainConfig:
        try:
            n_params = len(inspect.signature(self.fn).parameters)
        except (TypeError, ValueError):  # pragma: no cover
            n_params = 1
        cfg = self.fn(preset, model) if n_params >= 2 else self.fn(preset)
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"recipe '{self.pattern}' returned {type(cfg).__name__}, expected TrainConfig")
        return cfg


#: The registered recipes: model-name pattern -> :class:`RecipeEntry`.
RECIPES: Registry[RecipeEntry] = Registry("recipe", same=lambda old, new: old.fn is new.fn)
_RECIPES = RECIPES  # the old private name, still read by tests that save and restore the registry
_loaded = False


def register_recipe(pattern: str, presets: tuple[str, ...] = PRESETS):
    """Register ``fn(preset) -> TrainConfig`` (or ``fn(preset, model)``) for model names matching ``pattern``."""

    def deco(fn: Callable[..., TrainConfig]) -> Callable[..., TrainConfig]:
        RECIPES.register(pattern, RecipeEntry(pattern, fn, tuple(presets)))
        return fn

    return deco


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in _RECIPE_MODULES:
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:  # that recipe is not written yet
            if exc.name != f"{__package__}.{name}":
                raise


def _loss_specs(cfg: TrainConfig) -> list[tuple[str, LossSpec]]:
    specs = [("loss", cfg.loss)]
    specs += [(f"stages.{i}.loss", st.loss) for i, st in enumerate(cfg.stages) if st.loss is not None]
    return specs


def ensure_registered(cfg: TrainConfig, check_model: bool = True) -> None:
    """Make every model and loss ``cfg`` names known, or raise a one-line ``ValueError``.

    Imports the built-in recipe modules (they register the paper losses) and, when a name is
    still unknown, the modules listed in ``cfg.imports`` (where plug-in models and losses register
    themselves). Then checks that ``cfg.model`` is registered and that every loss builds with its
    kwargs. Nothing is written.
    """
    from ..losses import build_loss, list_losses
    from ..models import list_models

    _load_builtin()

    def missing() -> list[str]:
        known = not check_model or not cfg.model or cfg.model in list_models()
        out = [] if known else [f"model '{cfg.model}'"]
        return out + [f"loss '{spec.name}'" for _, spec in _loss_specs(cfg) if spec.name not in list_losses()]

    if missing():
        for name in cfg.imports:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ValueError(f"setting 'imports': cannot import module '{name}' ({exc})") from exc
    if check_model and cfg.model and cfg.model not in list_models():
        from ..models import get_model_entry

        get_model_entry(cfg.model)  # raises with the registered names and a hint
    for where, spec in _loss_specs(cfg):
        if spec.name not in list_losses():
            hint = f" (modules imported: {', '.join(cfg.imports)})" if cfg.imports else ""
            raise ValueError(
                f"setting '{where}.name': unknown loss '{spec.name}'{hint}; registered: {', '.join(list_losses())}"
            )
        build_loss(spec)  # bad kwargs fail here, before any work


def plugin_modules(cfg: TrainConfig) -> list[str]:
    """``cfg.imports`` plus the modules outside ivfuse that define ``cfg``'s model and losses (for ``imports``)."""
    from ..losses import LOSSES
    from ..models import get_model_entry, list_models

    found = list(cfg.imports)
    owners = [LOSSES[spec.name] for _, spec in _loss_specs(cfg) if spec.name in LOSSES]
    if cfg.model and cfg.model in list_models():
        owners.append(get_model_entry(cfg.model).fn)
    for obj in owners:
        mod = getattr(obj, "__module__", "") or ""
        if mod and mod != "__main__" and mod.split(".")[0] != "ivfuse" and mod not in found:
            found.append(mod)
    return found


def list_recipes() -> dict[str, tuple[str, ...]]:
    """Registered patterns and their presets."""
    _load_builtin()
    return {k: RECIPES[k].presets for k in RECIPES.names()}


def get_recipe(model: str) -> RecipeEntry:
    """The recipe for a model: exact name, else the longest matching pattern, else the default."""
    _load_builtin()
    if model in RECIPES:
        return RECIPES[model]
    matches = [p for p in RECIPES if fnmatch.fnmatch(model, p)]
    if matches:
        return RECIPES[max(matches, key=lambda p: (len(p.replace("*", "").replace("?", "")), p))]
    return RecipeEntry("*", default_recipe, PRESETS)


def make_config(model: str, preset: str = "cpu") -> TrainConfig:
    """The :class:`TrainConfig` of ``model`` under ``preset``, with ``model`` and ``preset`` filled in."""
    entry = get_recipe(model)
    if preset not in entry.presets:
        raise ValueError(f"unknown preset '{preset}' for model '{model}'; choose one of {', '.join(entry.presets)}")
    cfg = copy.deepcopy(entry(preset, model))
    cfg.model = model
    cfg.preset = preset
    return cfg


def base_config(preset: str) -> TrainConfig:
    """Generic settings of a preset: data, cadence, one stage. Recipes start from this.

    * ``paper``: 128 px crops, batch 16, flips; Adam 1e-4 halved every 20 epochs, 100 epochs.
    * ``cpu``: 96 px crops, batch 8, flips; Adam 1e-3 cosine to 1e-5, 1500 steps, 2 threads.
    """
    if preset == "paper":
        return TrainConfig(
            data=DataConfig(crop=128, batch_size=16, hflip=True, vflip=True),
            stages=[
                Stage(
                    name="main", length=100, unit="epochs",
                    optimizer=OptimizerConfig(name="adam", lr=1e-4),
                    schedule=ScheduleConfig(name="step", step_size=20, gamma=0.5),
                )
            ],
            checkpoint_every=1000,
            log_every=20,
        )
    if preset == "cpu":
        return TrainConfig(
            data=DataConfig(crop=96, batch_size=8, hflip=True, vflip=True),
            stages=[
                Stage(
                    name="main", length=1500, unit="steps",
                    optimizer=OptimizerConfig(name="adam", lr=1e-3),
                    schedule=ScheduleConfig(name="cosine", min_lr=1e-5, warmup=50),
                )
            ],
            threads=2,
            checkpoint_every=250,
            log_every=10,
            val_every=500,
        )
    raise ValueError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")


def default_recipe(preset: str) -> TrainConfig:
    """Any trainable model: SSIM + intensity-to-max + gradient-to-max (PoMAI eq. 15, 17, 18), one stage."""
    cfg = base_config(preset)
    cfg.loss = LossSpec("fusion", {"ssim": 1.0, "intensity": 1.0, "gradient": 1.0})
    cfg.description = "generic recipe: SSIM + intensity-to-max + Sobel-gradient-to-max"
    return cfg


def ablated_config(model: str, preset: str, ablations: dict, name: str) -> TrainConfig:
    """``make_config(model, preset)`` with the ablation ``name`` of ``ablations`` applied.

    ``ablations`` maps a row name to ``(model kwargs, loss kwargs)``: the kwargs are merged into
    the recipe's ``model_kwargs`` and its loss kwargs, and the description says which row it is.
    """
    if name not in ablations:
        raise ValueError(f"unknown ablation '{name}'; choose one of {', '.join(ablations)}")
    cfg = make_config(model, preset)
    model_kw, loss_kw = ablations[name]
    cfg.model_kwargs = {**cfg.model_kwargs, **model_kw}
    cfg.loss = LossSpec(cfg.loss.name, {**cfg.loss.kwargs, **loss_kw})
    cfg.description = f"{cfg.description}; ablation {name}"
    return cfg
