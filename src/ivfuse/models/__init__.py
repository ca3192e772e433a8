"""Fusion models: the registry, the shared interface, classical baselines and the papers' networks."""

from .base import FusionModel, check_inputs
from .registry import (
    MissingWeightsError,
    ModelEntry,
    WeightCard,
    count_parameters,
    create_model,
    get_model_entry,
    list_models,
    load_checkpoint,
    register_model,
    save_weights,
)

__all__ = [
    "FusionModel",
    "check_inputs",
    "MissingWeightsError",
    "ModelEntry",
    "WeightCard",
    "count_parameters",
    "create_model",
    "get_model_entry",
    "list_models",
    "load_checkpoint",
    "register_model",
    "save_weights",
]
