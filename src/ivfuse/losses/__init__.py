"""Unsupervised fusion losses, their ROI- and mask-weighted forms, the papers' objectives and the criterion registry.

Every term is a function and a module. Images are (B, 1, H, W) float tensors in [0, 1]; an
optional ``weight`` map is (B, 1, H, W) (or broadcastable), non-negative, and turns the plain
pixel mean into ``sum(loss * weight) / sum(weight)`` (FGFusion eq. 8). Half-precision inputs are
computed in float32, so the terms are safe under autocast; float64 stays float64.

Terms (PoMAI eq. 14-18, FGFusion eq. 8-11, FusionNet's target-aware loss):

* :func:`ssim_loss`: ``(1 - SSIM(F, I)) + (1 - SSIM(F, V))`` (PoMAI eq. 15), Gaussian window
  11 px, sigma 1.5, C1 = (0.01)^2, C2 = (0.03)^2, reflection padding so the SSIM map has the
  image's size and can be weighted.
* :func:`ncc_loss`: ``(1 - NCC(F, I)) + (1 - NCC(F, V))``, global normalised cross-correlation
  per image (FGFusion computes its structural term with NCC).
* :func:`mse_loss`: ``mean((F - I)^2) + mean((F - V)^2)`` (PoMAI eq. 16; the paper writes a
  squared norm, we average over pixels so the weight does not depend on the crop size).
* :func:`intensity_max_loss`: ``mean |F - max(I, V)|`` (PoMAI eq. 17).
* :func:`gradient_max_loss`: ``mean | |grad F| - max(|grad I|, |grad V|) |`` with the Sobel
  operator and ``|grad X| = |Sobel_x X| + |Sobel_y X|`` (PoMAI eq. 18, FGFusion eq. 9; neither
  paper says how the two directions combine, the L1 sum is the common choice).
* :func:`intensity_select_loss`: ``mean (F - S)^2`` with S the input of larger standard
  deviation, chosen per image (FGFusion eq. 10).
* :func:`foreground_bce`: binary cross-entropy of a predicted foreground probability against a
  mask (FGFusion eq. 11).
* :func:`roi_loss`: the target-aware term, structure + intensity + gradient restricted to the ROI
  (FusionNet; the paper's exact form is not public in our sources, see :class:`FusionLoss`).

The criterion contract of the training engine: a criterion is an ``nn.Module`` whose
``forward(fused, maps, batch)`` returns ``(loss, terms)``: ``loss`` a scalar tensor to minimise,
``terms`` a dict of detached scalars (floats or 0-dim tensors) for logging. ``batch`` is the
dataset's batch dict (``"ir"``, ``"vis"``, ``"roi"``, ``"mask"``, ``"name"``; see
:mod:`ivfuse.data`), ``maps`` the model's maps dict (empty if it has none). Criteria are
registered by name with :func:`register_loss` and built from a config with :func:`build_loss`.

Layout: the terms as functions in :mod:`ivfuse.losses.terms`, their module forms in
:mod:`ivfuse.losses.modules`, the generic weighted sum :class:`FusionLoss` (registered here as
``"fusion"``) in this file, and the two paper objectives that are not plain weightings of it in
:mod:`ivfuse.losses.papers`: :class:`~ivfuse.losses.papers.FGFusionLoss` (FusionLoss with FGFusion's
terms and an optional foreground map) and :class:`~ivfuse.losses.papers.TargetAwareLoss`
(FusionNet's Eqs. 6-8). The training recipes register those two under ``"fgfusion"`` and
``"fusionnet_target_aware"``; PoMAI's objective is ``"fusion"`` with its weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import torch
from torch import nn

from .._registry import Registry
from .modules import (
    ForegroundBCELoss,
    GradientMaxLoss,
    IntensityMaxLoss,
    IntensitySelectLoss,
    MSELoss,
    NCCLoss,
    SSIMLoss,
)
from .terms import (
    activity_weight,
    blur,
    foreground_bce,
    gradient_magnitude,
    gradient_max_loss,
    intensity_max_loss,
    intensity_select_loss,
    mask_weight,
    mse_loss,
    ncc,
    ncc_loss,
    roi_loss,
    ssim,
    ssim_loss,
    ssim_map,
    target_aware_maps,
    weighted_mean,
)

__all__ = [
    "LOSSES",
    "FGFusionLoss",
    "ForegroundBCELoss",
    "FusionLoss",
    "GradientMaxLoss",
    "IntensityMaxLoss",
    "IntensitySelectLoss",
    "MSELoss",
    "NCCLoss",
    "SSIMLoss",
    "TargetAwareLoss",
    "blur",
    "build_loss",
    "foreground_bce",
    "gradient_magnitude",
    "gradient_max_loss",
    "intensity_max_loss",
    "intensity_select_loss",
    "list_losses",
    "mask_weight",
    "mse_loss",
    "ncc",
    "ncc_loss",
    "register_loss",
    "roi_loss",
    "ssim",
    "ssim_loss",
    "ssim_map",
    "target_aware_maps",
    "activity_weight",
    "weighted_mean",
]

#: The registered criteria: name -> class or factory, built as ``factory(**kwargs)``.
LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss")
_LOSSES = LOSSES  # the old private name, still read by tests that save and restore the registry


def register_loss(name: str):
    """Register a criterion class or factory under ``name``; it is built as ``factory(**kwargs)``.

    The built module must implement ``forward(fused, maps, batch) -> (loss, terms)``.
    """
    return LOSSES.decorator(name)


def list_losses() -> list[str]:
    """Names of the registered criteria."""
    return LOSSES.names()


def build_loss(spec: Any, **kwargs: Any) -> nn.Module:
    """Build a registered criterion.

    Args:
        spec: a name, or an object with ``name`` and ``kwargs`` (e.g. :class:`ivfuse.train.config.LossSpec`),
            or a mapping with those keys.
        **kwargs: extra keyword arguments (override the spec's).
    """
    if isinstance(spec, str):
        name, kw = spec, {}
    elif isinstance(spec, Mapping):
        name, kw = spec["name"], dict(spec.get("kwargs", {}))
    else:
        name, kw = spec.name, dict(spec.kwargs)
    kw.update(kwargs)
    factory = LOSSES.get(name)
    try:
        return factory(**kw)
    except TypeError as exc:
        raise ValueError(f"loss '{name}': bad arguments {kw} ({exc})") from exc


@register_loss("fusion")
class FusionLoss(nn.Module):
    """Weighted sum of the fusion terms; covers the three papers' objectives.

    ``total = ssim * L_struct + [sum over pixels of (mse * L_mse + intensity * L_int + gradient * L_grad
    + bce * L_ex) * W] / sum(W) + roi * L_roi`` where W = 1 + (mask_weight - 1) * mask +
    (roi_weight - 1) * roi is the pixel weight map of FGFusion eq. 8 (all ones by default, which
    reduces every term to its plain mean). A term whose weight is 0 is neither computed nor logged.

    * PoMAI (eq. 14): ``ssim=5, mse=1, intensity=1, gradient=10``.
    * FGFusion (eq. 8-11): ``structure="ncc", ssim=1, intensity_mode="select", intensity=10,
      gradient=10, bce=5, mask_weight=3`` (:class:`FGFusionLoss` is this form with those defaults).
    * Target-aware terms: ``roi > 0`` (the ROI-restricted :func:`roi_loss`) and/or ``roi_weight > 1``
      (ROI pixels weigh more in the pixel terms). FusionNet's recipe uses :class:`TargetAwareLoss`.

    Args:
        ssim: weight of the structural term (SSIM, or NCC with ``structure="ncc"``), never pixel-weighted.
        mse: weight of the MSE-to-both-inputs term.
        intensity: weight of the intensity term.
        gradient: weight of the gradient-to-max term.
        bce: weight of the foreground BCE; needs ``maps[fg_key]`` (a probability) from the model.
        roi: weight of the ROI-restricted target-aware term.
        mask_weight: foreground pixel weight in W (FGFusion: 3).
        roi_weight: ROI pixel weight in W.
        intensity_mode: "max" (PoMAI eq. 17, L1 to max(I, V)) or "select" (FGFusion eq. 10).
        base_sigma: with ``intensity_mode="max"``, 0 (pixel-wise) or the Gaussian sigma (pixels) of the
            base layer on which F is compared with max(I, V) (see :func:`intensity_max_loss`).
        structure: "ssim" or "ncc".
        roi_intensity_target: "max" or "ir" for the ROI term's intensity target.
        fg_key: the model's maps key holding the foreground probability.
        window, sigma: SSIM window.
    """

    def __init__(
        self,
        ssim: float = 1.0,
        mse: float = 0.0,
        intensity: float = 1.0,
        gradient: float = 1.0,
        bce: float = 0.0,
        roi: float = 0.0,
        mask_weight: float = 1.0,
        roi_weight: float = 1.0,
        intensity_mode: str = "max",
        structure: str = "ssim",
        roi_intensity_target: str = "max",
        fg_key: str = "foreground",
        window: int = 11,
        sigma: float = 1.5,
        base_sigma: float = 0.0,
    ) -> None:
        super().__init__()
        if intensity_mode not in ("max", "select"):
            raise ValueError(f"intensity_mode must be 'max' or 'select', got {intensity_mode!r}")
        if base_sigma < 0:
            raise ValueError(f"base_sigma must be >= 0, got {base_sigma}")
        if base_sigma > 0 and intensity_mode != "max":
            raise ValueError(f"base_sigma={base_sigma} needs intensity_mode='max', got {intensity_mode!r}")
        self.base_sigma = float(base_sigma)
        if structure not in ("ssim", "ncc"):
            raise ValueError(f"structure must be 'ssim' or 'ncc', got {structure!r}")
        self.w = {"ssim": ssim, "mse": mse, "int": intensity, "grad": gradient, "bce": bce, "roi": roi}
        self.mask_weight, self.roi_weight = float(mask_weight), float(roi_weight)
        self.intensity_mode, self.structure = intensity_mode, structure
        self.roi_intensity_target = roi_intensity_target
        self.fg_key = fg_key
        self.window, self.sigma = window, sigma

    def pixel_weight(self, batch: Mapping[str, Any], like: torch.Tensor) -> torch.Tensor | None:
        """W of FGFusion eq. 8 from the batch's mask and ROI, or None when uniform."""
        w = None
        if self.mask_weight != 1.0:
            w = mask_weight(batch["mask"].to(like.device), self.mask_weight)
        if self.roi_weight != 1.0:
            r = (self.roi_weight - 1.0) * batch["roi"].to(like.device).float()
            w = 1.0 + r if w is None else w + r
        return w

    def foreground(self, maps: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The model's foreground probability for the BCE term (None skips the term).

        Raises:
            KeyError: the model returned no ``fg_key`` map.
        """
        if self.fg_key not in maps:
            raise KeyError(
                f"{type(self).__name__}(bce={self.w['bce']}) needs the model's '{self.fg_key}' map; the model "
                f"returned {sorted(maps) or 'no maps'}"
            )
        return maps[self.fg_key]

    def forward(self, fused: torch.Tensor, maps: Mapping[str, torch.Tensor] | None, batch: Mapping[str, Any]):
        ir, vis = batch["ir"].to(fused.device), batch["vis"].to(fused.device)
        maps = maps or {}
        w = self.pixel_weight(batch, fused)
        terms: dict[str, torch.Tensor] = {}
        total = fused.new_zeros((), dtype=torch.float32)
        if self.w["ssim"]:
            if self.structure == "ssim":
                t = ssim_loss(fused, ir, vis, None, self.window, self.sigma)
            else:
                t = ncc_loss(fused, ir, vis)
            terms[self.structure] = t
            total = total + self.w["ssim"] * t
        if self.w["mse"]:
            terms["mse"] = t = mse_loss(fused, ir, vis, w)
            total = total + self.w["mse"] * t
        if self.w["int"]:
            if self.intensity_mode == "max":
                t = intensity_max_loss(fused, ir, vis, w, base_sigma=self.base_sigma)
            else:
                t = intensity_select_loss(fused, ir, vis, w)
            terms["int"] = t
            total = total + self.w["int"] * t
        if self.w["grad"]:
            terms["grad"] = t = gradient_max_loss(fused, ir, vis, w)
            total = total + self.w["grad"] * t
        prob = self.foreground(maps) if self.w["bce"] else None
        if prob is not None:
            terms["bce"] = t = foreground_bce(prob, batch["mask"].to(fused.device), w)
            total = total + self.w["bce"] * t
        if self.w["roi"]:
            terms["roi"] = t = roi_loss(
                fused, ir, vis, batch["roi"].to(fused.device), self.roi_intensity_target, self.window, self.sigma
            )
            total = total + self.w["roi"] * t
        out = {k: v.detach() for k, v in terms.items()}
        out["loss"] = total.detach()
        return total, out


def __getattr__(name: str):
    # The paper objectives build on FusionLoss, so their module is loaded on first use.
    if name in ("FGFusionLoss", "TargetAwareLoss"):
        from . import papers

        return getattr(papers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
