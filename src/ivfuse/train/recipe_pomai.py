"""PoMAI training (Section 3.7 and 4.1 of the paper): two progressive stages, loss of eq. 14-18.

Loss (eq. 14): ``5 L_ssim + 1 L_mse + 1 L_int + 10 L_grad``, the engine's ``"fusion"`` criterion with those
weights (eq. 15 SSIM to both inputs, eq. 16 MSE to both inputs, eq. 17 L1 to the pixel-wise maximum, eq. 18
Sobel gradient magnitude to the larger one).

Stages:

- ``stage1`` trains the encoder, NGMM, CAMN and decoder; the decoder reads Cat(x_ngmm, x_camn) (eq. 12) and
  the MICM is frozen (unused).
- ``stage2`` freezes all of those and trains the MICM only; the decoder reads the MICM output (eq. 13).

Presets:

- ``paper``: 128x128 random crops, batch 16, Adam 1e-4 halved every 20 epochs, 80 + 20 epochs. The paper does
  not say whether the step schedule restarts in stage two; each stage has its own optimizer here, so it does.
- ``cpu``: 64x64 crops, batch 16, flips, Adam 1e-3 (warm-up, cosine decay to 1e-5, gradient norm clipped to 1) per
  stage, stage lengths in the paper's 80:20 ratio (:data:`CPU_STEPS` in total): a few minutes on one idle core
  (about 0.1 s per step). Small crops buy steps; the stride-4 CPU variant sees 16x16 feature maps (L = 256, 4
  groups of K = 64). The shipped ``pomai_cpu`` weights add ``--steps 5000 --crop 128`` (the paper's crop; 32x32
  feature maps, 16 groups; about 0.4 s per step, half an hour on one core), see docs/models/pomai.md.

Ablations of Table 2: :func:`ablation_config` (rows I-V).
"""

from __future__ import annotations

from .config import DataConfig, LossSpec, OptimizerConfig, ScheduleConfig, Stage, TrainConfig
from .recipes import base_config, make_config, register_recipe

__all__ = ["ABLATIONS", "CPU_STEPS", "PAPER_LOSS", "ablation_config", "pomai_recipe", "two_stages"]

#: eq. 14 weights (alpha_1..alpha_4 = 5, 1, 1, 10; Section 4.1).
PAPER_LOSS = {"ssim": 5.0, "mse": 1.0, "intensity": 1.0, "gradient": 10.0}

#: total optimizer steps of the ``cpu`` preset (stage one : stage two = 80 : 20).
CPU_STEPS = 1500

#: MICM parameters live under this module name.
_MICM = "micm"

#: Table 2 rows: model keyword arguments and the kind of schedule.
ABLATIONS: dict[str, tuple[dict, str]] = {
    "full": ({}, "two_stage"),
    "wo_ngmm": ({"use_ngmm": False}, "two_stage"),  # I
    "wo_camn": ({"use_camn": False}, "two_stage"),  # II
    "wo_micm": ({"use_micm": False}, "stage1_only"),  # III
    "wo_two_stage": ({}, "joint"),  # IV
    "wo_freeze": ({}, "no_freeze"),  # V
}


def two_stages(
    length1: int,
    length2: int,
    unit: str,
    optimizer: OptimizerConfig,
    schedule: ScheduleConfig,
    freeze_stage_one: bool = True,
) -> list[Stage]:
    """The progressive schedule: stage one without the MICM, stage two training the MICM (Section 3.7).

    Args:
        length1, length2: stage lengths in ``unit``.
        unit: "steps" or "epochs".
        optimizer, schedule: used by both stages (each stage builds a fresh optimizer).
        freeze_stage_one: stage two trains only the MICM (False: everything; ablation V).
    """
    return [
        Stage("stage1", length1, unit=unit, freeze=[_MICM], optimizer=optimizer, schedule=schedule),
        Stage("stage2", length2, unit=unit, train=[_MICM] if freeze_stage_one else ["*"], optimizer=optimizer,
              schedule=schedule),
    ]


def _schedule(preset: str, length: int) -> tuple[OptimizerConfig, ScheduleConfig]:
    if preset == "paper":
        return OptimizerConfig("adam", lr=1e-4), ScheduleConfig("step", step_size=20, gamma=0.5)
    warm = max(1, min(50, length // 10))
    return OptimizerConfig("adam", lr=1e-3, grad_clip=1.0), ScheduleConfig("cosine", min_lr=1e-5, warmup=warm)


@register_recipe("pomai*")
def pomai_recipe(preset: str) -> TrainConfig:
    """Training configuration of PoMAI for the ``paper`` or ``cpu`` preset (see the module docstring)."""
    cfg = base_config(preset)  # raises for unknown presets
    cfg.loss = LossSpec("fusion", dict(PAPER_LOSS))
    if preset == "paper":
        opt, sched = _schedule(preset, 80)
        cfg.stages = two_stages(80, 20, "epochs", opt, sched)
        cfg.description = "PoMAI paper recipe (IJCAI 2025, Sec. 3.7 and 4.1): 128 px crops, batch 16, 80 + 20 epochs"
    else:
        cfg.data = DataConfig(crop=64, batch_size=16, hflip=True, vflip=True)
        n1 = round(CPU_STEPS * 0.8)
        n2 = CPU_STEPS - n1
        cfg.stages = [
            Stage("stage1", n1, unit="steps", freeze=[_MICM], optimizer=_schedule(preset, n1)[0],
                  schedule=_schedule(preset, n1)[1]),
            Stage("stage2", n2, unit="steps", train=[_MICM], optimizer=_schedule(preset, n2)[0],
                  schedule=_schedule(preset, n2)[1]),
        ]
        cfg.description = f"PoMAI CPU recipe: paper loss and two stages (80:20), Adam 1e-3 cosine, {CPU_STEPS} steps"
    return cfg


def ablation_config(name: str, preset: str = "cpu", model: str = "pomai_cpu") -> TrainConfig:
    """The recipe of ``model`` under ``preset`` with a Table 2 ablation applied.

    Args:
        name: "full"; "wo_ngmm" (I); "wo_camn" (II); "wo_micm" (III: the stage-one network only, trained for the
            whole budget); "wo_two_stage" (IV: MICM in the network from the start, one stage training
            everything for the whole budget); "wo_freeze" (V: stage two also updates the stage-one modules).
        preset: "paper" or "cpu".
        model: a registered PoMAI variant.

    Returns:
        A :class:`TrainConfig` whose ``model_kwargs`` carry the architectural switches.
    """
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation '{name}'; choose one of {', '.join(ABLATIONS)}")
    cfg = make_config(model, preset)
    model_kw, kind = ABLATIONS[name]
    cfg.model_kwargs = {**cfg.model_kwargs, **model_kw}
    s1, s2 = cfg.stages
    total = s1.length + s2.length
    if kind == "stage1_only":
        cfg.stages = [Stage("stage1", total, unit=s1.unit, optimizer=s1.optimizer, schedule=s1.schedule)]
    elif kind == "joint":
        cfg.stages = [Stage("joint", total, unit=s1.unit, optimizer=s1.optimizer, schedule=s1.schedule)]
    elif kind == "no_freeze":
        s2.train = ["*"]
    cfg.description = f"{cfg.description}; ablation {name}"
    return cfg
