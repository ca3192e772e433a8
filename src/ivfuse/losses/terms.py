"""The fusion loss terms as functions on (B, 1, H, W) tensors in [0, 1].

An optional ``weight`` map is (B, 1, H, W) (or broadcastable), non-negative, and turns the plain
pixel mean into ``sum(loss * weight) / sum(weight)`` (FGFusion eq. 8). Half-precision inputs are
computed in float32, so the terms are safe under autocast; float64 stays float64. The formulas and
the papers' equations are listed in :mod:`ivfuse.losses`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..filters import banded_gaussian_blur as blur
from ..filters import check_bchw, sobel_magnitude

__all__ = [
    "blur",
    "foreground_bce",
    "gradient_magnitude",
    "gradient_max_loss",
    "intensity_max_loss",
    "intensity_select_loss",
    "mask_weight",
    "mse_loss",
    "ncc",
    "ncc_loss",
    "roi_loss",
    "ssim",
    "ssim_loss",
    "ssim_map",
    "target_aware_maps",
    "activity_weight",
    "weighted_mean",
]

_C1 = 0.01**2
_C2 = 0.03**2


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


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004) with a Gaussian window, data range 1.

    Args:
        x, y: (B, C, H, W) in [0, 1].
        window: window side (odd); the Gaussian's radius is ``window // 2``.
        sigma: Gaussian standard deviation in pixels.

    Returns:
        (B, C, H, W) SSIM values in [-1, 1] (1 where x equals y).
    """
    check_bchw(x, "x")
    check_bchw(y, "y")
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
    check_bchw(x, "x")
    check_bchw(y, "y")
    x, y = _f32(x, y)
    xc = x.flatten(1) - x.flatten(1).mean(1, keepdim=True)
    yc = y.flatten(1) - y.flatten(1).mean(1, keepdim=True)
    # eps inside the root keeps the gradient finite for a flat image (where NCC is defined as 0)
    return (xc * yc).sum(1) / (xc.pow(2).sum(1) * yc.pow(2).sum(1) + eps**2).sqrt()


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """``|Sobel_x x| + |Sobel_y x|``, shaped like ``x`` (replicated borders; equals :func:`ivfuse.filters.sobel`).

    Half-precision inputs are computed in float32 (:func:`ivfuse.filters.sobel_magnitude` on the cast input).
    """
    (x,) = _f32(x)
    return sobel_magnitude(x)


# --------------------------------------------------------------------------------------------
# Loss terms (functions)
# --------------------------------------------------------------------------------------------


def _check3(fused: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor) -> None:
    for name, t in (("fused", fused), ("ir", ir), ("vis", vis)):
        check_bchw(t, name)
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


def _base_layers(sigma: float, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gaussian base layers (standard deviation ``sigma`` px, radius round(3 sigma)) of same-shaped
    images, blurred in one call."""
    radius = max(1, int(round(3 * sigma)))
    return blur(torch.cat(images), sigma, radius).chunk(len(images))


def _check_target_options(saturation: float, base_sigma: float, grad_scales: Sequence[float],
                          intensity_target: str, contrast_mix: float = 1.0, knee: float = 0.0,
                          knee_slope: float = 0.25) -> None:
    """The settings :func:`target_aware_maps` (and the losses built on it) accept; ValueError otherwise."""
    if not 0.0 <= saturation < 1.0:
        raise ValueError(f"saturation must be in [0, 1), got {saturation}")
    if not 0.0 <= knee < 1.0:
        raise ValueError(f"knee must be in [0, 1), got {knee}")
    if not 0.0 <= knee_slope <= 1.0:
        raise ValueError(f"knee_slope must be in [0, 1], got {knee_slope}")
    if knee > 0 and saturation > 0:
        raise ValueError("knee and saturation are two treatments of the same glare: set one of them")
    if any(float(x) <= 0 for x in grad_scales):
        raise ValueError(f"grad_scales must be > 0, got {list(grad_scales)}")
    if intensity_target not in ("max", "activity", "contrast"):
        raise ValueError(f"intensity_target must be 'max', 'activity' or 'contrast', got {intensity_target!r}")
    if intensity_target in ("activity", "contrast") and base_sigma <= 0:
        raise ValueError(f"intensity_target={intensity_target!r} needs base_sigma > 0")
    if not 0.0 < contrast_mix <= 1.0:
        raise ValueError(f"contrast_mix must be in (0, 1], got {contrast_mix}")


def intensity_max_loss(fused, ir, vis, weight: torch.Tensor | None = None, base_sigma: float = 0.0):
    """``mean |F - max(I, V)|`` (PoMAI eq. 17); 0 when F is the pixel-wise maximum.

    ``base_sigma > 0`` compares the Gaussian base layers instead, ``mean |G*F - max(G*I, G*V)|``
    (G of that standard deviation in pixels), as :func:`target_aware_maps` does: the brighter source
    sets the local brightness, and the texture finer than G is left to the gradient term.
    """
    _check3(fused, ir, vis)
    if base_sigma < 0:
        raise ValueError(f"intensity_max_loss: base_sigma must be >= 0, got {base_sigma}")
    f, i, v = _f32(fused, ir, vis)
    if base_sigma > 0:
        f, i, v = _base_layers(base_sigma, f, i, v)
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
    check_bchw(prob, "prob")
    check_bchw(mask, "mask")
    if prob.shape != mask.shape:
        raise ValueError(f"foreground_bce: prediction {tuple(prob.shape)} and mask {tuple(mask.shape)} differ")
    p, m = _f32(prob, mask)
    if logits:
        per_pixel = F.binary_cross_entropy_with_logits(p, m, reduction="none")
    else:
        with torch.autocast(device_type=p.device.type, enabled=False):
            per_pixel = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), m, reduction="none")
    return weighted_mean(per_pixel, weight)


def activity_weight(ir: torch.Tensor, vis: torch.Tensor, sigma: float, power: float = 2.0,
                    eps: float = 1e-3) -> torch.Tensor:
    """The infrared's share ``a_I^p / (a_I^p + a_V^p)`` by local activity, shaped like ``ir``.

    ``a_X = sqrt(G*(X^2) - (G*X)^2) + eps``: the local standard deviation of X in a Gaussian window
    of standard deviation ``sigma`` pixels; 0.5 where both are flat.
    """
    if sigma <= 0 or power <= 0:
        raise ValueError(f"activity_weight: sigma and power must be > 0, got {sigma}, {power}")
    i, v = _f32(ir, vis)
    mi, mv, si, sv = _base_layers(sigma, i, v, i * i, v * v)
    a_i = (si - mi * mi).clamp_min(0).add(1e-12).sqrt() + eps
    a_v = (sv - mv * mv).clamp_min(0).add(1e-12).sqrt() + eps
    a_i, a_v = a_i.pow(power), a_v.pow(power)
    return a_i / (a_i + a_v)


def target_aware_maps(
    fused, ir, vis, window: int = 11, sigma: float = 1.5, base_sigma: float = 0.0, saturation: float = 0.0,
    grad_scales: Sequence[float] = (), intensity_target: str = "max", activity_power: float = 2.0,
    contrast_mix: float = 1.0, knee: float = 0.0, knee_slope: float = 0.25,
) -> dict[str, torch.Tensor]:
    """Per-pixel maps of the target-aware terms, each shaped like ``fused``.

    ``"ssim"``: ``(1 - SSIM(F, I)) + (1 - SSIM(F, V))``; ``"int"``: ``|F - max(I, V)|``; ``"int_ir"``:
    ``|F - I|``; ``"grad"``: ``| |grad F| - max(|grad I|, |grad V|) |``. Shared by :func:`roi_loss`,
    :class:`ivfuse.losses.FusionLoss` (its ROI term) and FusionNet's target-aware loss.

    ``base_sigma > 0`` compares intensities on the base layer instead: ``"int"`` is
    ``|G*F - max(G*I, G*V)|`` with G a Gaussian of that standard deviation (pixels), so the brighter
    source sets the local brightness while the texture finer than G is left to the gradient term
    (the pixel-wise maximum otherwise drops the darker source's texture wherever the other is brighter).

    ``saturation = t`` in (0, 1) treats over-exposed visible pixels (headlight glare, lamps) as carrying no
    scene radiance: the visible value in the maximum is scaled by ``1 - s`` with
    ``s = clamp((V - t) / (1 - t), 0, 1)`` (V on the base layer when ``base_sigma > 0``), so where the visible
    saturates the intensity target becomes the infrared. 0 keeps the plain maximum.

    ``knee = k`` in (0, 1) compresses the visible brightness above k instead, ``k + knee_slope (V - k)``
    (V on the base layer when ``base_sigma > 0``): the target stays monotone in V (no dark patch inside a
    glare ringed by a bright band, as the infrared target gives), but below white, so the gradient and
    SSIM terms can draw the infrared's content (a car, a pedestrian) into the glare. Exclusive with
    ``saturation``; 0 keeps the plain maximum.

    ``grad_scales = (s1, s2, ...)`` adds the same gradient-to-max comparison on Gaussian-blurred
    copies (standard deviation s pixels) of the three images, each scaled by s so that a step edge
    counts about as much at every scale: ``sum_s s | |grad G_s*F| - max(|grad G_s*I|, |grad G_s*V|) |``
    is added to ``"grad"``. The Sobel term alone sees contrast over three pixels; the coarser terms ask for
    the stronger source's contrast over regions too (a target's outline against its surroundings, a
    tree line against the sky), where the intensity term asks only for the brighter source's level.

    ``intensity_target="activity"`` (needs ``base_sigma > 0``) replaces the maximum by an
    activity-weighted mix of the two base layers, ``w G*I + (1 - w) G*V`` with
    ``w = a_I^p / (a_I^p + a_V^p)`` and ``a_X`` the local standard deviation of X in a Gaussian window
    of ``base_sigma`` (``p = activity_power``): each region takes its brightness from the source with
    the more structure there (a warm target on a flat background from the infrared, a lit street at
    night from the visible), not from the brighter one, so a flat, bright source does not wash out a
    dark but structured one, and inside a saturated, flat glare the infrared's content is the target.

    ``intensity_target="contrast"`` (needs ``base_sigma > 0``) takes each pixel's base brightness from
    the source whose base layer lies further from that image's own mean, ``|G*X - mean(G*X)|``: a hot
    target on a cool background from the infrared, a dark visible sky or shadow from the visible
    (where the maximum would replace it by the infrared's mid grey), so the fused image keeps the
    larger of the two contrasts instead of compressing the dark end. ``contrast_mix = m`` in (0, 1]
    blends that choice with the maximum, ``(1 - m) max + m contrast``.
    """
    _check_target_options(saturation, base_sigma, grad_scales, intensity_target, contrast_mix, knee, knee_slope)
    f, i, v = _f32(fused, ir, vis)
    grad_target = torch.maximum(gradient_magnitude(i), gradient_magnitude(v))
    grad = (gradient_magnitude(f) - grad_target).abs()
    for sc in map(float, grad_scales):
        fs, is_, vs = _base_layers(sc, f, i, v)
        target = torch.maximum(gradient_magnitude(is_), gradient_magnitude(vs))
        grad = grad + sc * (gradient_magnitude(fs) - target).abs()
    if base_sigma > 0:
        f_int, i_int, v_int = _base_layers(base_sigma, f, i, v)
    else:
        f_int, i_int, v_int = f, i, v
    if saturation > 0:
        v_int = v_int * (1 - ((v_int - saturation) / (1 - saturation)).clamp(0, 1))
    if knee > 0:
        v_int = torch.where(v_int > knee, knee + knee_slope * (v_int - knee), v_int)
    if intensity_target == "activity":
        w = activity_weight(i, v, base_sigma, activity_power)
        intensity = (f_int - (w * i_int + (1 - w) * v_int)).abs()
    elif intensity_target == "contrast":
        dev_i = (i_int - i_int.mean((-2, -1), keepdim=True)).abs()
        dev_v = (v_int - v_int.mean((-2, -1), keepdim=True)).abs()
        target = torch.lerp(torch.maximum(i_int, v_int), torch.where(dev_i >= dev_v, i_int, v_int), contrast_mix)
        intensity = (f_int - target).abs()
    else:
        intensity = (f_int - torch.maximum(i_int, v_int)).abs()
    return {
        "ssim": (1 - ssim_map(f, i, window, sigma)) + (1 - ssim_map(f, v, window, sigma)),
        "int": intensity,
        "int_ir": (f - i).abs(),
        "grad": grad,
    }


def roi_loss(fused, ir, vis, roi: torch.Tensor, intensity_target: str = "max", window: int = 11, sigma: float = 1.5):
    """Target-aware term: SSIM + intensity + gradient, averaged over ROI pixels only.

    ``(1 - SSIM(F, I)) + (1 - SSIM(F, V))``, ``|F - T|`` with T = max(I, V) (or I when
    ``intensity_target="ir"``: keep the thermal target's radiance) and the gradient-to-max
    difference, summed per pixel and averaged with ``roi`` as weights. 0 when the ROI is empty.
    """
    _check3(fused, ir, vis)
    check_bchw(roi, "roi")
    if intensity_target not in ("max", "ir"):
        raise ValueError(f"roi_loss: intensity_target must be 'max' or 'ir', got {intensity_target!r}")
    maps = target_aware_maps(fused, ir, vis, window, sigma)
    per_pixel = maps["ssim"] + maps["int" if intensity_target == "max" else "int_ir"] + maps["grad"]
    w = roi.float().expand_as(per_pixel)
    if float(w.sum()) == 0.0:
        return per_pixel.sum() * 0.0  # keeps the graph (and DDP) happy
    return weighted_mean(per_pixel, w)
