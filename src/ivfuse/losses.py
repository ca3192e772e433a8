"""Unsupervised fusion losses, their ROI- and mask-weighted forms, and the criterion registry.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ForegroundBCELoss",
    "FusionLoss",
    "GradientMaxLoss",
    "IntensityMaxLoss",
    "IntensitySelectLoss",
    "MSELoss",
    "NCCLoss",
    "SSIMLoss",
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
    "weighted_mean",
]

_C1 = 0.01**2
_C2 = 0.03**2


def _check(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 4:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name}: expected a (B, C, H, W) tensor, got {shape}")


def _f32(*ts: torch.Tensor) -> list[torch.Tensor]:
    """Half-precision inputs to float32 (float64 stays float64, for gradcheck)."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in ts]


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``sum(values * weight) / sum(weight)`` over all elements (plain mean when ``weight`` is None).

    Args:
        values: (B, C, H, W) per-pixel loss.
        weight: broadcastable to ``values``, >= 0. An all-zero weight gives 0.
    """
    if weight is None:
        return values.mean()
    w = weight.to(values.dtype).expand_as(values)
    return (values * w).sum() / w.sum().clamp_min(1e-12)


def mask_weight(mask: torch.Tensor, fg_weight: float) -> torch.Tensor:
    """Pixel weights ``1 + (fg_weight - 1) * mask``: ``fg_weight`` on the foreground, 1 elsewhere
    (FGFusion's W_mask)."""
    return 1.0 + (float(fg_weight) - 1.0) * mask.float()


# --------------------------------------------------------------------------------------------
# Similarity maps
# --------------------------------------------------------------------------------------------


_MATRICES: dict[tuple, torch.Tensor] = {}


def _band_matrix(n: int, taps: tuple[float, ...], mode: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n, n) matrix M such that ``M @ v`` cross-correlates ``v`` with ``taps`` (odd length), padded by ``mode``.

    ``mode`` is "reflect" (falls back to "replicate" when the signal is too short to reflect, like
    :func:`ivfuse.filters.safe_pad`) or "replicate". Filtering an image as ``Mh @ x @ Mw.T`` gives
    the separable filter of :mod:`ivfuse.filters` with the same borders, an order of magnitude
    faster than a one-channel ``conv2d`` on CPU, forward and backward.
    """
    key = (n, taps, mode, dtype, device)
    m = _MATRICES.get(key)
    if m is None:
        r = (len(taps) - 1) // 2
        if mode == "reflect" and r >= n:
            mode = "replicate"
        rows = torch.arange(n).view(-1, 1)
        cols = rows + torch.arange(-r, r + 1).view(1, -1)
        if mode == "reflect":
            cols = cols.abs()
            cols = torch.where(cols > n - 1, 2 * (n - 1) - cols, cols)
        else:
            cols = cols.clamp(0, n - 1)
        w = torch.tensor(taps, dtype=torch.float64).expand(n, -1)
        m64 = torch.zeros(n, n, dtype=torch.float64).scatter_add_(1, cols, w)
        m = m64.to(dtype=dtype, device=device)
        if len(_MATRICES) > 64:
            _MATRICES.clear()
        _MATRICES[key] = m
    return m


def _separable(x: torch.Tensor, taps_h: tuple[float, ...], taps_w: tuple[float, ...], mode: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    if mode == "reflect" and (max(len(taps_h), len(taps_w)) - 1) // 2 >= min(h, w):
        mode = "replicate"  # as ivfuse.filters.gaussian_blur does
    mh = _band_matrix(h, taps_h, mode, x.dtype, x.device)
    mw = _band_matrix(w, taps_w, mode, x.dtype, x.device)
    return mh @ x @ mw.t()


def _gaussian_taps(sigma: float, radius: int) -> tuple[float, ...]:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return tuple((k / k.sum()).tolist())


def blur(x: torch.Tensor, sigma: float = 1.5, radius: int = 5) -> torch.Tensor:
    """Gaussian blur with reflected borders; equals :func:`ivfuse.filters.gaussian_blur` (matrix form, faster)."""
    taps = _gaussian_taps(sigma, radius)
    return _separable(x, taps, taps, "reflect")


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004) with a Gaussian window, data range 1.

    Args:
        x, y: (B, C, H, W) in [0, 1].
        window: window side (odd); the Gaussian's radius is ``window // 2``.
        sigma: Gaussian standard deviation in pixels.

    Returns:
        (B, C, H, W) SSIM values in [-1, 1] (1 where x equals y).
    """
    _check("x", x)
    _check("y", y)
    if x.shape != y.shape:
        raise ValueError(f"ssim_map: shapes differ, {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = _f32(x, y)
    n = x.shape[0]
    stats = blur(torch.cat((x, y, x * x, y * y, x * y)), sigma, window // 2)  # one call for the five moments
    mx, my, exx, eyy, exy = stats.split(n)
    sxx = exx - mx * mx
    syy = eyy - my * my
    sxy = exy - mx * my
    num = (2 * mx * my + _C1) * (2 * sxy + _C2)
    den = (mx * mx + my * my + _C1) * (sxx + syy + _C2)
    return num / den


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image, shape (B,). See :func:`ssim_map`."""
    return ssim_map(x, y, window, sigma).flatten(1).mean(1)


def ncc(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalised cross-correlation per image, shape (B,), in [-1, 1] (0 when either image is flat)."""
    _check("x", x)
    _check("y", y)
    x, y = _f32(x, y)
    xc = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
    yc = y.flatten(1) - y.flatten(1).mean(1, keepdim=True)
    # eps inside the root keeps the gradient finite for a flat image (where NCC is defined as 0)
    return (xc * yc).sum(1) / (xc.pow(2).sum(1) * yc.pow(2).sum(1) + eps**2).sqrt()


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """``|Sobel_x x| + |Sobel_y x|``, shaped like ``x`` (replicated borders; equals :func:`ivfuse.filters.sobel`)."""
    (x,) = _f32(x)
    gx = _separable(x, (1.0, 2.0, 1.0), (-1.0, 0.0, 1.0), "replicate")
    gy = _separable(x, (-1.0, 0.0, 1.0), (1.0, 2.0, 1.0), "replicate")
    return gx.abs() + gy.abs()


# --------------------------------------------------------------------------------------------
# Loss terms (functions)
# --------------------------------------------------------------------------------------------


def _check3(fused: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor) -> None:
    for name, t in (("fused", fused), ("ir", ir), ("vis", vis)):
        _check(name, t)
    if not (fused.shape == ir.shape == vis.shape):
        raise ValueError(
            f"fused, ir and vis must share one shape, got {tuple(fused.shape)}, {tuple(ir.shape)}, {tuple(vis.shape)}"
        )


def ssim_loss(fused, ir, vis, weight: torch.Tensor | None = None, window: int = 11, sigma: float = 1.5):
    """``(1 - SSIM(F, I)) + (1 - SSIM(F, V))`` (PoMAI eq. 15), in [0, 4]; 0 iff F = I = V.

    With ``weight`` the two SSIM maps are averaged with those pixel weights.
    """
    _check3(fused, ir, vis)
    per_pixel = (1 - ssim_map(fused, ir, window, sigma)) + (1 - ssim_map(fused, vis, window, sigma))
    return weighted_mean(per_pixel, weight)


def ncc_loss(fused, ir, vis, weight: torch.Tensor | None = None):
    """``(1 - NCC(F, I)) + (1 - NCC(F, V))`` averaged over the batch, in [0, 4]. ``weight`` is ignored (global term)."""
    _check3(fused, ir, vis)
    return ((1 - ncc(fused, ir)) + (1 - ncc(fused, vis))).mean()


def mse_loss(fused, ir, vis, weight: torch.Tensor | None = None):
    """``mean((F - I)^2) + mean((F - V)^2)`` (PoMAI eq. 16, pixel-averaged)."""
    _check3(fused, ir, vis)
    f, i, v = _f32(fused, ir, vis)
    return weighted_mean((f - i).pow(2) + (f - v).pow(2), weight)


def intensity_max_loss(fused, ir, vis, weight: torch.Tensor | None = None):
    """``mean |F - max(I, V)|`` (PoMAI eq. 17); 0 when F is the pixel-wise maximum."""
    _check3(fused, ir, vis)
    f, i, v = _f32(fused, ir, vis)
    return weighted_mean((f - torch.maximum(i, v)).abs(), weight)


def gradient_max_loss(fused, ir, vis, weight: torch.Tensor | None = None):
    """``mean | |grad F| - max(|grad I|, |grad V|) |`` with Sobel gradients (PoMAI eq. 18, FGFusion eq. 9)."""
    _check3(fused, ir, vis)
    target = torch.maximum(gradient_magnitude(ir), gradient_magnitude(vis))
    return weighted_mean((gradient_magnitude(fused) - target).abs(), weight)


def intensity_select_loss(fused, ir, vis, weight: torch.Tensor | None = None):
    """``mean (F - S)^2`` with S, per image, the input of larger standard deviation (FGFusion eq. 10)."""
    _check3(fused, ir, vis)
    f, i, v = _f32(fused, ir, vis)
    pick_ir = (i.flatten(1).std(1, correction=0) > v.flatten(1).std(1, correction=0)).view(-1, 1, 1, 1)
    target = torch.where(pick_ir, i, v)
    return weighted_mean((f - target).pow(2), weight)


def foreground_bce(prob: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None = None, logits: bool = False):
    """Binary cross-entropy of a foreground prediction against a mask (FGFusion eq. 11).

    Args:
        prob: (B, 1, H, W) probability in [0, 1] (or logits when ``logits``).
        mask: (B, 1, H, W) target in [0, 1].
        weight: optional pixel weights (FGFusion eq. 8 weights this term with W_mask).
        logits: ``prob`` holds logits (numerically safer under mixed precision).
    """
    _check("prob", prob)
    _check("mask", mask)
    if prob.shape != mask.shape:
        raise ValueError(f"foreground_bce: prediction {tuple(prob.shape)} and mask {tuple(mask.shape)} differ")
    p, m = _f32(prob, mask)
    if logits:
        per_pixel = F.binary_cross_entropy_with_logits(p, m, reduction="none")
    else:
        with torch.autocast(device_type=p.device.type, enabled=False):
            per_pixel = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), m, reduction="none")
    return weighted_mean(per_pixel, weight)


def roi_loss(fused, ir, vis, roi: torch.Tensor, intensity_target: str = "max", window: int = 11, sigma: float = 1.5):
    """Target-aware term: SSIM + intensity + gradient, averaged over ROI pixels only.

    ``(1 - SSIM(F, I)) + (1 - SSIM(F, V))``, ``|F - T|`` with T = max(I, V) (or I when
    ``intensity_target="ir"``: keep the thermal target's radiance) and the gradient-to-max
    difference, summed per pixel and averaged with ``roi`` as weights. 0 when the ROI is empty.
    """
    _check3(fused, ir, vis)
    _check("roi", roi)
    f, i, v = _f32(fused, ir, vis)
    if intensity_target not in ("max", "ir"):
        raise ValueError(f"roi_loss: intensity_target must be 'max' or 'ir', got {intensity_target!r}")
    target = torch.maximum(i, v) if intensity_target == "max" else i
    per_pixel = (1 - ssim_map(f, i, window, sigma)) + (1 - ssim_map(f, v, window, sigma))
    per_pixel = per_pixel + (f - target).abs()
    per_pixel = per_pixel + (gradient_magnitude(f) - torch.maximum(gradient_magnitude(i), gradient_magnitude(v))).abs()
    w = roi.float().expand_as(per_pixel)
    if float(w.sum()) == 0.0:
        return per_pixel.sum() * 0.0  # keeps the graph (and DDP) happy
    return weighted_mean(per_pixel, w)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


class _Term(nn.Module):
    fn: Callable[..., torch.Tensor]

    def forward(self, fused: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor, weight: torch.Tensor | None = None):
        return type(self).fn(fused, ir, vis, weight)


class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`."""

    def __init__(self, window: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        self.window, self.sigma = window, sigma

    def forward(self, fused, ir, vis, weight=None):
        return ssim_loss(fused, ir, vis, weight, self.window, self.sigma)


class NCCLoss(_Term):
    """Module form of :func:`ncc_loss`."""

    fn = staticmethod(ncc_loss)


class MSELoss(_Term):
    """Module form of :func:`mse_loss` (fused against both inputs)."""

    fn = staticmethod(mse_loss)


class IntensityMaxLoss(_Term):
    """Module form of :func:`intensity_max_loss`."""

    fn = staticmethod(intensity_max_loss)


class GradientMaxLoss(_Term):
    """Module form of :func:`gradient_max_loss`."""

    fn = staticmethod(gradient_max_loss)


class IntensitySelectLoss(_Term):
    """Module form of :func:`intensity_select_loss`."""

    fn = staticmethod(intensity_select_loss)


class ForegroundBCELoss(nn.Module):
    """Module form of :func:`foreground_bce`."""

    def __init__(self, logits: bool = False) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, prob, mask, weight=None):
        return foreground_bce(prob, mask, weight, self.logits)


# --------------------------------------------------------------------------------------------
# Registry and the composite criterion
# --------------------------------------------------------------------------------------------

_LOSSES: dict[str, Callable[..., nn.Module]] = {}


def register_loss(name: str):
    """Register a criterion class or factory under ``name``; it is built as ``factory(**kwargs)``.

    The built module must implement ``forward(fused, maps, batch) -> (loss, terms)``.
    """

    def deco(factory: Callable[..., nn.Module]):
        if name in _LOSSES and _LOSSES[name] is not factory:
            raise ValueError(f"loss '{name}' is already registered")
        _LOSSES[name] = factory
        return factory

    return deco


def list_losses() -> list[str]:
    """Names of the registered criteria."""
    return sorted(_LOSSES)


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
    if name not in _LOSSES:
        raise ValueError(f"unknown loss '{name}'; registered: {', '.join(list_losses())}")
    try:
        return _LOSSES[name](**kw)
    except TypeError as exc:
        raise ValueError(f"loss '{name}': bad arguments {kw} ({exc})") from exc


@register_loss("fusion")
class FusionLoss(nn.Module):
    """Weighted sum of the fusion terms; covers the three papers' objectives.

    ``total = ssim * L_struct + [sum over pixels of (mse * L_mse + intensity * L_int + gradient * L_grad
    + bce * L_ex) * W] / sum(W) + roi * L_roi`` where W = 1 + (mask_weight - 1) * mask +
    (roi_weight - 1) * roi is the pixel weight map of FGFusion eq. 8 (all ones by default, which
    reduces every term to its plain mean).

    * PoMAI (eq. 14): ``ssim=5, mse=1, intensity=1, gradient=10``.
    * FGFusion (eq. 8-11): ``structure="ncc", ssim=1, intensity_mode="select", intensity=10,
      gradient=10, bce=5, mask_weight=3``.
    * FusionNet (target-aware): base terms plus ``roi > 0`` (extra ROI-restricted term) and/or
      ``roi_weight > 1`` (ROI pixels weigh more in the pixel terms).

    Args:
        ssim: weight of the structural term (SSIM, or NCC with ``structure="ncc"``).
        mse: weight of the MSE-to-both-inputs term.
        intensity: weight of the intensity term.
        gradient: weight of the gradient-to-max term.
        bce: weight of the foreground BCE; needs ``maps[fg_key]`` from the model.
        roi: weight of the ROI-restricted target-aware term.
        mask_weight: foreground pixel weight in W (FGFusion: 3).
        roi_weight: ROI pixel weight in W.
        intensity_mode: "max" (PoMAI eq. 17, L1 to max(I, V)) or "select" (FGFusion eq. 10).
        structure: "ssim" or "ncc".
        weight_structure: also weight the SSIM map by W (FGFusion eq. 8 keeps it outside).
        roi_intensity_target: "max" or "ir" for the ROI term's intensity target.
        fg_key: the model's maps key holding the foreground probability.
        fg_logits: that map holds logits.
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
        weight_structure: bool = False,
        roi_intensity_target: str = "max",
        fg_key: str = "foreground",
        fg_logits: bool = False,
        window: int = 11,
        sigma: float = 1.5,
    ) -> None:
        super().__init__()
        if intensity_mode not in ("max", "select"):
            raise ValueError(f"intensity_mode must be 'max' or 'select', got {intensity_mode!r}")
        if structure not in ("ssim", "ncc"):
            raise ValueError(f"structure must be 'ssim' or 'ncc', got {structure!r}")
        self.w = {"ssim": ssim, "mse": mse, "int": intensity, "grad": gradient, "bce": bce, "roi": roi}
        self.mask_weight, self.roi_weight = float(mask_weight), float(roi_weight)
        self.intensity_mode, self.structure = intensity_mode, structure
        self.weight_structure = weight_structure
        self.roi_intensity_target = roi_intensity_target
        self.fg_key, self.fg_logits = fg_key, fg_logits
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

    def forward(self, fused: torch.Tensor, maps: Mapping[str, torch.Tensor] | None, batch: Mapping[str, Any]):
        ir, vis = batch["ir"].to(fused.device), batch["vis"].to(fused.device)
        maps = maps or {}
        w = self.pixel_weight(batch, fused)
        terms: dict[str, torch.Tensor] = {}
        total = fused.new_zeros((), dtype=torch.float32)
        if self.w["ssim"]:
            if self.structure == "ssim":
                t = ssim_loss(fused, ir, vis, w if self.weight_structure else None, self.window, self.sigma)
            else:
                t = ncc_loss(fused, ir, vis)
            terms[self.structure] = t
            total = total + self.w["ssim"] * t
        if self.w["mse"]:
            terms["mse"] = t = mse_loss(fused, ir, vis, w)
            total = total + self.w["mse"] * t
        if self.w["int"]:
            fn = intensity_max_loss if self.intensity_mode == "max" else intensity_select_loss
            terms["int"] = t = fn(fused, ir, vis, w)
            total = total + self.w["int"] * t
        if self.w["grad"]:
            terms["grad"] = t = gradient_max_loss(fused, ir, vis, w)
            total = total + self.w["grad"] * t
        if self.w["bce"]:
            if self.fg_key not in maps:
                raise KeyError(
                    f"FusionLoss(bce={self.w['bce']}) needs the model's '{self.fg_key}' map; the model returned "
                    f"{sorted(maps) or 'no maps'}"
                )
            terms["bce"] = t = foreground_bce(maps[self.fg_key], batch["mask"].to(fused.device), w, self.fg_logits)
            total = total + self.w["bce"] * t
        if self.w["roi"]:
            terms["roi"] = t = roi_loss(
                fused, ir, vis, batch["roi"].to(fused.device), self.roi_intensity_target, self.window, self.sigma
            )
            total = total + self.w["roi"] * t
        out = {k: v.detach() for k, v in terms.items()}
        out["loss"] = total.detach()
        return total, out
