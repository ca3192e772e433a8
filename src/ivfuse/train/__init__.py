"""The training engine: configuration, recipes, stages, the loop, checkpoints, DDP.

Entry points:

* :func:`ivfuse.train.recipes.make_config` (model name + preset -> :class:`TrainConfig`),
* :func:`ivfuse.train.loop.train` (config + run folder -> trained model),
* ``ivfuse train --model NAME --data DIR --out RUN_DIR`` on the command line.

The contract the model authors code against is written out in ``docs/training.md``.
"""

from .config import (
    ConfigError,
    DataConfig,
    LossSpec,
    OptimizerConfig,
    PseudoLabelConfig,
    ScheduleConfig,
    Stage,
    TrainConfig,
)
from .recipes import base_config, default_recipe, get_recipe, list_recipes, make_config, register_recipe

__all__ = [
    "ConfigError",
    "DataConfig",
    "LossSpec",
    "OptimizerConfig",
    "PseudoLabelConfig",
    "ScheduleConfig",
    "Stage",
    "TrainConfig",
    "base_config",
    "default_recipe",
    "get_recipe",
    "list_recipes",
    "make_config",
    "register_recipe",
    "train",
]


def __getattr__(name: str):
    if name == "train":  # the loop pulls in the data pipeline; import it on first use
        from .loop import train

        return train
    raise AttributeError(f"module 'ivfuse.train' has no attribute '{name}'")
