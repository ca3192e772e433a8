"""Stages: which parameters train, module modes, optimizers and learning-rate schedules.

A run is a list of :class:`~ivfuse.train.config.Stage`. :func:`plan_stages` turns it into step
ranges; :func:`apply_stage` prepares the model for one stage (``model.set_stage(name)`` if the
model has it, ``requires_grad`` per parameter, eval mode for fully frozen submodules);
:func:`build_optimizer` and :func:`lr_at` give the stage's optimizer and its learning rate at
any step, as a pure function of the step so a resumed run lands on the same value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import OptimizerConfig, ScheduleConfig, Stage

__all__ = [
    "StagePlan",
    "apply_stage",
    "build_optimizer",
    "lr_at",
    "plan_stages",
    "select_parameters",
    "set_train_modes",
]


@dataclass(frozen=True)
class StagePlan:
    """A stage placed on the global step axis: it runs steps ``start`` to ``end - 1``.

    Attributes:
        index: position in the run.
        stage: the stage's configuration.
        start, end: global step range.
        steps_per_unit: 1 for a stage measured in steps, steps per epoch for one in epochs.
    """

    index: int
    stage: Stage
    start: int
    end: int
    steps_per_unit: int

    @property
    def steps(self) -> int:
        return self.end - self.start


def plan_stages(stages: list[Stage], steps_per_epoch: int) -> list[StagePlan]:
    """Place stages one after the other on the step axis.

    Raises:
        ValueError: no stages, a non-positive length, an unknown unit, or duplicate names.
    """
    if not stages:
        raise ValueError("the run has no stages")
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    out, start = [], 0
    for i, st in enumerate(stages):
        if st.unit not in ("steps", "epochs"):
            raise ValueError(f"stage '{st.name}': unit must be 'steps' or 'epochs', got {st.unit!r}")
        if st.length < 1:
            raise ValueError(f"stage '{st.name}': length must be >= 1, got {st.length}")
        spu = 1 if st.unit == "steps" else int(steps_per_epoch)
        end = start + st.length * spu
        out.append(StagePlan(i, st, start, end, spu))
        start = end
    return out


def _matches(name: str, prefix: str) -> bool:
    return prefix in ("*", "") or name == prefix or name.startswith(prefix + ".")


def select_parameters(model: nn.Module, train: list[str], freeze: list[str]) -> list[str]:
    """Names of the parameters a stage trains: matched by a ``train`` prefix and by no ``freeze`` prefix.

    Raises:
        ValueError: a prefix matches no parameter (the message lists the top-level modules), or
            the selection is empty.
    """
    names = [n for n, _ in model.named_parameters()]
    for prefix in list(train) + list(freeze):
        if not any(_matches(n, prefix) for n in names):
            tops = sorted({n.split(".")[0] for n in names})
            raise ValueError(
                f"stage prefix '{prefix}' matches no parameter of {type(model).__name__}; top-level modules: "
                f"{', '.join(tops)}"
            )
    train = list(train) or ["*"]
    chosen = [n for n in names if any(_matches(n, p) for p in train) and not any(_matches(n, p) for p in freeze)]
    if not chosen:
        raise ValueError(f"the stage trains no parameter (train={train}, freeze={list(freeze)})")
    return chosen


def set_train_modes(model: nn.Module) -> None:
    """``model.train()``, then ``eval()`` on every submodule whose parameters are all frozen.

    Submodules without parameters (activations, dropout) follow their parent.
    """
    model.train()

    def visit(module: nn.Module) -> None:
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()
            return
        for child in module.children():
            visit(child)

    visit(model)


def apply_stage(model: nn.Module, stage: Stage) -> list[nn.Parameter]:
    """Prepare ``model`` for ``stage`` and return the parameters it trains.

    Calls ``model.set_stage(stage.name)`` when the model defines it, sets ``requires_grad`` from
    the stage's ``train``/``freeze`` prefixes and puts fully frozen submodules in eval mode.
    """
    if callable(getattr(model, "set_stage", None)):
        model.set_stage(stage.name)
    chosen = set(select_parameters(model, stage.train, stage.freeze))
    params = []
    for n, p in model.named_parameters():
        p.requires_grad_(n in chosen)
        if n in chosen:
            params.append(p)
    set_train_modes(model)
    return params


def build_optimizer(cfg: OptimizerConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """A fresh optimizer over ``params`` (learning rate set each step by :func:`lr_at`)."""
    name = cfg.name.lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
        )
    raise ValueError(f"unknown optimizer '{cfg.name}'; choose adam, adamw or sgd")


def lr_at(opt: OptimizerConfig, sched: ScheduleConfig, step: int, plan: StagePlan) -> float:
    """Learning rate at ``step`` steps into the stage.

    Step-like schedules count completed units (steps or epochs); "cosine" and "poly" use the
    fraction of the stage done. A linear warm-up over ``sched.warmup`` units multiplies any of
    them.
    """
    base = float(opt.lr)
    spu = plan.steps_per_unit
    units_done = step // spu
    frac = step / max(plan.steps, 1)
    name = sched.name.lower()
    if name == "constant":
        lr = base
    elif name == "step":
        if sched.step_size < 1:
            raise ValueError("schedule 'step' needs step_size >= 1")
        lr = base * sched.gamma ** (units_done // sched.step_size)
    elif name == "multistep":
        lr = base * sched.gamma ** sum(1 for m in sched.milestones if units_done >= int(m))
    elif name == "cosine":
        lr = sched.min_lr + (base - sched.min_lr) * 0.5 * (1 + math.cos(math.pi * frac))
    elif name == "poly":
        lr = sched.min_lr + (base - sched.min_lr) * (1 - frac) ** sched.power
    else:
        raise ValueError(f"unknown schedule '{sched.name}'; choose constant, step, multistep, cosine or poly")
    warm = sched.warmup * spu
    if warm > 0 and step < warm:
        lr *= (step + 1) / warm
    return lr
