"""Training recipe of FusionNet (arXiv:2509.11476) and its target-aware loss (Sec. III.D).

The paper supervises the fusion with global unsupervised terms plus the same terms restricted
to weak region-of-interest boxes, with a weight. It names neither the terms nor the weight, so
we choose (constructor arguments of :class:`TargetAwareLoss`)::

    L_global = w_s * L_ssim + w_i * L_int + w_g * L_grad                                (6)
    L_roi    = w_s * L_ssim|R + w_i * L_int|R + w_g * L_grad|R                          (7)
    L        = L_global + lambda_roi * L_roi                                            (8)

with ``L_ssim = (1 - SSIM(F, I)) + (1 - SSIM(F, V))``, ``L_int = |F - max(I, V)|`` and
``L_grad = | |grad F| - max(|grad I|, |grad V|) |`` (the :mod:`ivfuse.losses` terms), and
``X|R`` the per-pixel map of X averaged over the ROI pixels R of the batch only
(``sum(x * roi) / sum(roi)``; 0 when the batch has no ROI pixel). R is ``batch["roi"]``: the union
of the annotation boxes when the dataset has them, else the engine's pseudo-ROIs (bright
infrared blobs). Inside R the intensity target may be the infrared (``roi_intensity_target="ir"``),
keeping a thermal target's radiance; the default keeps ``max(I, V)`` so that (7) is exactly (6)
restricted to R.

The loss also logs ``roi_ssim``: the mean of SSIM(F, I) and SSIM(F, V) over R, the paper's
ROI-SSIM (up to the metric convention's border handling); the engine's validation averages the
criterion's terms, so every validation row carries ``val_roi_ssim`` on the validation set's
(pseudo-)ROIs.

Weak-label study (the paper's open question 3): the boxes are degraded in the data pipeline,
``data.degrade`` (:class:`ivfuse.data.DegradeBoxes`): ``keep < 1`` keeps the boxes of only that
fraction of the images (a stable hash of the pair name, so the same images lose their labels at
every step, as in a partly annotated dataset) and ``jitter > 0`` moves and rescales every box by up
to that fraction of its size, drawn from each sample's seed (so a resumed run sees the same boxes);
``batch["roi"]`` follows the degraded boxes. The loss's old spellings ``roi_keep``, ``roi_jitter``
and ``roi_seed`` in a configuration (TOML, ``--set loss.kwargs.roi_jitter=...``, a run's
``config.json``) are moved onto ``data.degrade`` when it is read (:mod:`ivfuse.train.config`).
See ``benchmarks/fusionnet_weak_labels.py``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .. import losses
from ..data import DegradeBoxes, boxes_to_mask, jitter_boxes, keeps_labels
from ..losses import register_loss
from .config import LossSpec, TrainConfig
from .recipes import base_config, register_recipe

__all__ = [
    "ABLATIONS",
    "CPU_LOSS_WEIGHTS",
    "CPU_STEPS",
    "TargetAwareLoss",
    "ablation_config",
    "degrade_boxes",
    "fusionnet_loss_spec",
    "fusionnet_recipe",
    "keeps_labels",
]

# Steps of the "cpu" preset, those of the shipped weights (about 20 minutes on one thread of a shared
# two-core machine; see docs/models/fusionnet.md).
CPU_STEPS = 3000

# Term weights (w_s, w_i, w_g) of the "cpu" preset, those of the shipped weights: chosen among four
# 300-step probes (1:5:10, 1:1:10, 1:10:5, 1:3:3 against the unit weights) on TNO, see
# docs/models/fusionnet.md. The "paper" preset keeps unit weights (the paper gives none).
CPU_LOSS_WEIGHTS = {"ssim": 1.0, "intensity": 10.0, "gradient": 5.0}


#: Old name of :func:`ivfuse.data.jitter_boxes` (``keeps_labels`` is :func:`ivfuse.data.keeps_labels`).
degrade_boxes = jitter_boxes


@register_loss("fusionnet_target_aware")
class TargetAwareLoss(losses.TargetAwareLoss):
    """FusionNet's target-aware loss, Eqs. (6)-(8): :class:`ivfuse.losses.TargetAwareLoss`, plus the
    weak-label study's old spelling.

    Args:
        ssim, intensity, gradient, roi_weight, roi_intensity_target, window, sigma: see
            :class:`ivfuse.losses.TargetAwareLoss` (w_s, w_i, w_g, lambda_roi, ...).
        roi_keep, roi_jitter, roi_seed: the weak-label study's old spelling, for this loss used on
            its own (:class:`ivfuse.data.DegradeBoxes`' ``keep``, ``jitter``, ``seed`` applied to
            ``batch["boxes"]``, the jitter drawn from each image's name and boxes, no state). In a
            training configuration they are moved onto ``data.degrade`` when it is read.
    """

    def __init__(
        self, *args: Any, roi_keep: float = 1.0, roi_jitter: float = 0.0, roi_seed: int = 0, **kwargs: Any
    ) -> None:
        if not 0.0 <= roi_keep <= 1.0 or roi_jitter < 0:
            raise ValueError(f"roi_keep must lie in [0, 1] and roi_jitter be >= 0, got {roi_keep}, {roi_jitter}")
        super().__init__(*args, **kwargs)
        self.roi_keep, self.roi_jitter, self.roi_seed = float(roi_keep), float(roi_jitter), int(roi_seed)
        self._degrade = DegradeBoxes(self.roi_keep, self.roi_jitter, self.roi_seed)

    def region(self, batch: Mapping[str, Any], like: torch.Tensor) -> torch.Tensor | None:
        """The ROI weights R (B, 1, H, W): ``batch["roi"]``, or boxes thinned/jittered and re-rasterised."""
        roi = batch.get("roi")
        if roi is None:
            return None
        if self.roi_keep >= 1.0 and self.roi_jitter <= 0.0:
            return roi.to(like.device).float()
        boxes: Sequence[torch.Tensor] = batch["boxes"]
        names = batch.get("name") or [str(i) for i in range(len(boxes))]
        h, w = like.shape[-2:]
        out = torch.zeros(len(boxes), 1, h, w)
        for i, (b, name) in enumerate(zip(boxes, names)):
            b = b.detach().cpu().numpy().astype("float32")
            b, kept = self._degrade(b, name, zlib.crc32(b.tobytes(), zlib.crc32(name.encode())))
            if kept:
                out[i, 0] = torch.from_numpy(boxes_to_mask(b, h, w))
        return out.to(like.device)


def fusionnet_loss_spec(
    roi_weight: float = 1.0, ssim: float = 1.0, intensity: float = 1.0, gradient: float = 1.0
) -> LossSpec:
    """The :class:`LossSpec` of Eq. (8) with the given term weights (unit by default) and lambda_roi."""
    return LossSpec(
        "fusionnet_target_aware",
        {"ssim": ssim, "intensity": intensity, "gradient": gradient, "roi_weight": roi_weight},
    )


@register_recipe("fusionnet*")
def fusionnet_recipe(preset: str) -> TrainConfig:
    """FusionNet's training: target-aware loss, one stage training everything.

    * ``paper``: the paper gives no optimiser, crop or schedule; we use the engine's generic
      paper preset (128 px crops, batch 16, Adam 1e-4 halved every 20 epochs, 100 epochs).
    * ``cpu``: term weights :data:`CPU_LOSS_WEIGHTS` (w_s 1, w_i 10, w_g 5; lambda_roi 1), 96 px
      crops, batch 8, flips, Adam 1e-3 with 32 warm-up steps and cosine decay to 1e-5 over
      :data:`CPU_STEPS` steps, one thread (the shipped weights' run).
    """
    cfg = base_config(preset)
    cfg.loss = fusionnet_loss_spec(roi_weight=1.0)
    if preset == "cpu":
        cfg.loss = fusionnet_loss_spec(roi_weight=1.0, **CPU_LOSS_WEIGHTS)
        cfg.stages[0].length = CPU_STEPS
        cfg.stages[0].schedule.warmup = 32
        # One thread: on a shared two-core machine a 2-thread run stalled at 5-9 s/step (each op waits
        # for its slowest thread), one thread ran at 0.76 s/step.
        cfg.threads = 1
        cfg.checkpoint_every = 200
        cfg.val_every = 600
    w = cfg.loss.kwargs
    cfg.description = (
        "FusionNet target-aware loss (SSIM + intensity-to-max + gradient-to-max, globally and inside the ROI, "
        f"weights {w['ssim']:g}:{w['intensity']:g}:{w['gradient']:g}, lambda_roi = 1); "
        "ROI = annotation boxes, else pseudo-ROIs"
    )
    return cfg


#: The paper's component ablations (its "first experiments") as (model kwargs, loss kwargs).
ABLATIONS: dict[str, tuple[dict, dict]] = {
    "full": ({}, {}),
    "wo_attention": ({"attention": False}, {}),
    "wo_alpha": ({"alpha_blend": False}, {}),
    "wo_roi": ({}, {"roi_weight": 0.0}),
}


def ablation_config(name: str, preset: str = "cpu", model: str = "fusionnet_cpu") -> TrainConfig:
    """The recipe of ``model`` under ``preset`` with one component ablation applied.

    Args:
        name: "full", "wo_attention" (no modality attention), "wo_alpha" (no alpha blending: the
            decoder writes the image) or "wo_roi" (lambda_roi = 0: the global loss alone).
        preset: "paper" or "cpu".
        model: a registered FusionNet variant.
    """
    from .recipes import ablated_config

    return ablated_config(model, preset, ABLATIONS, name)
