"""The paper objectives that are more than a weighting of :class:`ivfuse.losses.FusionLoss`.

* :class:`FGFusionLoss`: FGFusion eq. (8-11), FusionLoss's NCC / select-intensity / BCE form with
  the paper's weights as defaults, the BCE dropped when the model returns no foreground map.
* :class:`TargetAwareLoss`: FusionNet's target-aware loss, Eqs. (6)-(8) of
  :mod:`ivfuse.train.recipe_fusionnet`: the global terms plus the same terms averaged over the ROI.

The training recipes register them (``"fgfusion"``, ``"fusionnet_target_aware"``); PoMAI's
eq. 14 is ``FusionLoss(ssim=5, mse=1, intensity=1, gradient=10)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import FusionLoss
from .terms import _check_target_options, gradient_magnitude, target_aware_maps, weighted_mean

__all__ = ["FGFusionLoss", "TargetAwareLoss"]


class FGFusionLoss(FusionLoss):
    """FGFusion's loss, eq. (8-11).

    ``L = l1 * L_struct + sum((l2 * L_int + l3 * L_grad + l4 * L_ex) * W) / sum(W)`` with W = ``mask_weight``
    on foreground pixels, 1 elsewhere; ``L_int`` the squared error to the input of larger standard
    deviation (eq. 10), ``L_grad`` the Sobel gradient-to-max term (eq. 9), ``L_ex`` the BCE of the
    model's foreground probability against the mask (eq. 11; skipped when the model has no
    foreground map, the "w/o Ex" ablation).

    Args:
        ssim: lambda_1, weight of the structural term (not mask-weighted).
        intensity: lambda_2, weight of the intensity term (eq. 10).
        gradient: lambda_3, weight of the gradient term (eq. 9).
        bce: lambda_4, weight of the foreground cross-entropy (eq. 11).
        mask_weight: W on foreground pixels (1 elsewhere); 1 disables mask weighting.
        structure: "ncc" (the paper's description) or "ssim".
        fg_key: key of the foreground probability in the model's maps.

    ``forward(fused, maps, batch)``: fused (B, 1, H, W) in [0, 1]; the batch needs "ir", "vis" and
    "mask" (B, 1, H, W) in [0, 1]. Returns the scalar loss and the detached terms.
    """

    def __init__(self, ssim: float = 1.0, intensity: float = 10.0, gradient: float = 10.0, bce: float = 5.0,
                 mask_weight: float = 3.0, structure: str = "ncc", fg_key: str = "foreground") -> None:
        if structure not in ("ncc", "ssim"):
            raise ValueError(f"FGFusionLoss: structure must be 'ncc' or 'ssim', got {structure!r}")
        if mask_weight <= 0:
            raise ValueError(f"FGFusionLoss: mask_weight must be > 0, got {mask_weight}")
        super().__init__(ssim=float(ssim), intensity=float(intensity), gradient=float(gradient), bce=float(bce),
                         mask_weight=mask_weight, intensity_mode="select", structure=structure, fg_key=fg_key)

    def foreground(self, maps: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """The foreground probability, or None (no BCE term) when the model returned none."""
        return maps.get(self.fg_key)


class TargetAwareLoss(nn.Module):
    """FusionNet's target-aware loss, Eqs. (6)-(8) (see :mod:`ivfuse.train.recipe_fusionnet`).

    ``L_global = w_s L_ssim + w_i L_int + w_g L_grad`` (6), ``L_roi`` the same terms averaged over
    the ROI pixels R only (7), ``L = L_global + roi_weight * L_roi`` (8).

    Args:
        ssim: w_s, weight of the structural term.
        intensity: w_i, weight of the intensity-to-max term.
        gradient: w_g, weight of the gradient-to-max term.
        roi_weight: lambda_roi, weight of the ROI-restricted terms (0: the global loss alone).
        roi_intensity_target: "max" (same target as the global term) or "ir" inside the ROI.
        window, sigma: SSIM Gaussian window.
        base_sigma: 0 (the pixel-wise intensity term) or the Gaussian sigma, in pixels, of the base layer on
            which the intensity term compares F with max(I, V) (see :func:`ivfuse.losses.target_aware_maps`).
        saturation: 0 (off) or the visible level t above which over-exposed visible pixels give way to the
            infrared in the intensity target (same function).
        grad_scales: Gaussian sigmas (pixels) at which the gradient term is also compared, () for the
            Sobel term alone (same function).
        intensity_target: "max" (max of the base layers), "activity" (the base layers mixed by local
            activity, ``activity_power`` the exponent; needs ``base_sigma > 0``) or "contrast" (the base
            layer further from its image's mean, blended with the maximum by ``contrast_mix``; needs
            ``base_sigma > 0``); same function.
        knee, knee_slope: 0 (off) or the visible level above which the visible brightness in the
            intensity target is compressed by ``knee_slope`` (glare kept monotone but below white, so the
            infrared's content can show inside it; exclusive with ``saturation``); same function.
        alpha_smooth: 0 (off) or the weight of a smoothness term on the model's alpha map (``maps["alpha"]``,
            the infrared share of each pixel): ``mean(w (d_x alpha)^2) + mean(w (d_y alpha)^2)``, forward
            differences, so the blend changes source gradually instead of switching within a pixel or two
            (a switch between sources of different brightness draws a seam, a patch with an outline).
        alpha_smooth_tau: 0 (w = 1) or tau > 0 for an edge-aware weight ``w = exp(-g / tau)``, g the larger
            Sobel magnitude of the two sources: the alpha may still change where a source has an edge.

    ``forward(fused, maps, batch)`` takes fused (B, 1, H, W) in [0, 1], the model's maps (only
    ``"alpha"``, and only with ``alpha_smooth > 0``) and the batch dict with "ir", "vis" (B, 1, H, W)
    in [0, 1] and "roi" (B, 1, H, W) in {0, 1}
    (or any non-negative weights; without "roi" the global loss alone); returns ``(loss, terms)``
    with ``terms["roi_ssim"]`` the mean SSIM of F with both inputs over R when R is not empty.
    """

    def __init__(
        self,
        ssim: float = 1.0,
        intensity: float = 1.0,
        gradient: float = 1.0,
        roi_weight: float = 1.0,
        roi_intensity_target: str = "max",
        window: int = 11,
        sigma: float = 1.5,
        base_sigma: float = 0.0,
        saturation: float = 0.0,
        grad_scales: Sequence[float] = (),
        intensity_target: str = "max",
        activity_power: float = 2.0,
        contrast_mix: float = 1.0,
        knee: float = 0.0,
        knee_slope: float = 0.25,
        alpha_smooth: float = 0.0,
        alpha_smooth_tau: float = 0.0,
    ) -> None:
        super().__init__()
        if alpha_smooth < 0 or alpha_smooth_tau < 0:
            raise ValueError(f"alpha_smooth and alpha_smooth_tau must be >= 0, got {alpha_smooth}, {alpha_smooth_tau}")
        self.alpha_smooth, self.alpha_smooth_tau = float(alpha_smooth), float(alpha_smooth_tau)
        if base_sigma < 0:
            raise ValueError(f"base_sigma must be >= 0, got {base_sigma}")
        _check_target_options(saturation, base_sigma, grad_scales, intensity_target, contrast_mix,
                              knee, knee_slope)  # at construction
        self.knee, self.knee_slope = float(knee), float(knee_slope)
        if activity_power <= 0:
            raise ValueError(f"activity_power must be > 0, got {activity_power}")
        self.intensity_target, self.activity_power = intensity_target, float(activity_power)
        self.contrast_mix = float(contrast_mix)
        self.grad_scales = tuple(float(x) for x in grad_scales)
        if roi_intensity_target not in ("max", "ir"):
            raise ValueError(f"roi_intensity_target must be 'max' or 'ir', got {roi_intensity_target!r}")
        if roi_weight < 0:
            raise ValueError(f"roi_weight must be >= 0, got {roi_weight}")
        self.w_ssim, self.w_int, self.w_grad = float(ssim), float(intensity), float(gradient)
        self.roi_weight = float(roi_weight)
        self.roi_intensity_target = roi_intensity_target
        self.window, self.sigma = window, sigma
        self.base_sigma = float(base_sigma)
        self.saturation = float(saturation)

    def pixel_terms(self, fused: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-pixel maps (B, 1, H, W) of the three terms, plus the intensity map against the infrared (float32)."""
        return target_aware_maps(fused.float(), ir.float(), vis.float(), self.window, self.sigma,
                                 self.base_sigma, self.saturation, self.grad_scales,
                                 self.intensity_target, self.activity_power, self.contrast_mix,
                                 self.knee, self.knee_slope)

    def alpha_smoothness(self, maps: Mapping[str, torch.Tensor] | None, ir: torch.Tensor,
                         vis: torch.Tensor) -> torch.Tensor:
        """The (edge-aware) squared-difference smoothness of ``maps["alpha"]``; see ``alpha_smooth``."""
        alpha = None if maps is None else maps.get("alpha")
        if alpha is None:
            raise ValueError("TargetAwareLoss: alpha_smooth > 0 needs the model's 'alpha' map "
                             "(a FusionNet with its alpha blend); this model returns none")
        alpha = alpha.float()
        if alpha.shape[-2:] != ir.shape[-2:]:
            raise ValueError(f"TargetAwareLoss: alpha map {tuple(alpha.shape)} and images {tuple(ir.shape)} "
                             "differ in size")
        dx = (alpha[..., :, 1:] - alpha[..., :, :-1]).pow(2)
        dy = (alpha[..., 1:, :] - alpha[..., :-1, :]).pow(2)
        if self.alpha_smooth_tau > 0:
            g = torch.maximum(gradient_magnitude(ir.float()), gradient_magnitude(vis.float()))
            w = torch.exp(-g / self.alpha_smooth_tau)
            dx, dy = dx * w[..., :, 1:], dy * w[..., 1:, :]
        return dx.mean() + dy.mean()

    def region(self, batch: Mapping[str, Any], like: torch.Tensor) -> torch.Tensor | None:
        """The ROI weights R (B, 1, H, W) on ``like``'s device: ``batch["roi"]``, or None."""
        roi = batch.get("roi")
        return None if roi is None else roi.to(like.device).float()

    def _combine(self, maps: Mapping[str, torch.Tensor], weight: torch.Tensor | None, int_key: str):
        parts = {
            "ssim": weighted_mean(maps["ssim"], weight),
            "int": weighted_mean(maps[int_key], weight),
            "grad": weighted_mean(maps["grad"], weight),
        }
        total = self.w_ssim * parts["ssim"] + self.w_int * parts["int"] + self.w_grad * parts["grad"]
        return total, parts

    def forward(
        self, fused: torch.Tensor, maps: Mapping[str, torch.Tensor] | None, batch: Mapping[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ir, vis = batch["ir"].to(fused.device), batch["vis"].to(fused.device)
        per_pixel = self.pixel_terms(fused, ir, vis)
        loss_global, parts = self._combine(per_pixel, None, "int")  # Eq. (6)
        terms = {k: v.detach() for k, v in parts.items()}
        terms["global"] = loss_global.detach()
        loss = loss_global
        if self.alpha_smooth > 0:
            smooth = self.alpha_smoothness(maps, ir, vis)
            loss = loss + self.alpha_smooth * smooth
            terms["alpha_smooth"] = smooth.detach()
        roi = self.region(batch, fused)
        if roi is not None:
            roi = roi.expand_as(per_pixel["ssim"])
            int_key = "int" if self.roi_intensity_target == "max" else "int_ir"
            loss_roi, roi_parts = self._combine(per_pixel, roi, int_key)  # Eq. (7)
            if self.roi_weight > 0:
                loss = loss + self.roi_weight * loss_roi  # Eq. (8)
            terms["roi"] = loss_roi.detach()
            if float(roi.sum()) > 0:
                terms["roi_ssim"] = (1.0 - 0.5 * roi_parts["ssim"]).detach()
        return loss, terms
