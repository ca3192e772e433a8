"""``evaluate``: score a fused image against its two sources under a named convention."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ._inputs import to_float255
from .conventions import DEFAULT_CONVENTION, Planes, check_convention, prepare_planes
from .gradient import average_gradient, edge_intensity, nabf, qabf, spatial_frequency
from .information import cross_entropy, entropy, mutual_information
from .perceptual import qcb, qcv, vif
from .reference import mse, psnr, rmse, roi_ssim, ssim
from .registry import list_metrics, resolve_metric
from .statistics import correlation_coefficient, scd, standard_deviation

__all__ = ["evaluate"]

# Each scorer takes one plane triple, the convention and the ROI weights (or None).
_Scorer = Callable[[Planes, str, object], float]

_SCORERS: dict[str, _Scorer] = {
    "EN": lambda p, c, roi: entropy(p.fused, c),
    "SD": lambda p, c, roi: standard_deviation(p.fused),
    "SF": lambda p, c, roi: spatial_frequency(p.fused, c),
    "AG": lambda p, c, roi: average_gradient(p.fused, c),
    "MI": lambda p, c, roi: mutual_information(p.vis, p.ir, p.fused, c),
    "VIF": lambda p, c, roi: vif(p.vis, p.ir, p.fused, c),
    "Qabf": lambda p, c, roi: qabf(p.vis, p.ir, p.fused, c),
    "SSIM": lambda p, c, roi: ssim(p.vis, p.ir, p.fused, c),
    "CC": lambda p, c, roi: correlation_coefficient(p.vis, p.ir, p.fused),
    "SCD": lambda p, c, roi: scd(p.vis, p.ir, p.fused),
    "PSNR": lambda p, c, roi: psnr(p.vis, p.ir, p.fused, c),
    "MSE": lambda p, c, roi: mse(p.vis, p.ir, p.fused, c),
    "RMSE": lambda p, c, roi: rmse(p.vis, p.ir, p.fused, c),
    "CE": lambda p, c, roi: cross_entropy(p.vis, p.ir, p.fused),
    "EI": lambda p, c, roi: edge_intensity(p.fused),
    "Nabf": lambda p, c, roi: nabf(p.vis, p.ir, p.fused),
    "Qcb": lambda p, c, roi: qcb(p.vis, p.ir, p.fused),
    "Qcv": lambda p, c, roi: qcv(p.vis, p.ir, p.fused),
    "ROI-SSIM": lambda p, c, roi: roi_ssim(p.vis, p.ir, p.fused, roi, c),
}


def _score(name: str, planes: list[Planes], convention: str, roi) -> float:
    if name == "SF" and convention == "vifb" and len(planes) > 1:
        # VIFB indexes an (H, W, 3) array with two subscripts: it scores R, G, B side by side.
        return spatial_frequency(np.concatenate([p.fused for p in planes], axis=1), "vifb")
    values = [_SCORERS[name](p, convention, roi) for p in planes]
    return float(np.mean(values))


def _resolve_names(metrics: str | Iterable[str] | None, convention: str, roi) -> list[str]:
    if metrics is None:
        names = list_metrics(convention)
        return names + ["ROI-SSIM"] if roi is not None else names
    if isinstance(metrics, str):
        metrics = [metrics]
    names: list[str] = []
    for m in metrics:
        canonical = resolve_metric(m)
        if canonical not in names:
            names.append(canonical)
    if "ROI-SSIM" in names and roi is None:
        raise ValueError("ROI-SSIM needs roi: pass boxes (N, 4) or a mask (H, W)")
    return names


def evaluate(
    fused,
    ir,
    vis,
    metrics: str | Iterable[str] | None = None,
    convention: str = DEFAULT_CONVENTION,
    roi=None,
) -> dict[str, float]:
    """Score a fused image against its infrared and visible sources.

    Args:
        fused: the fused image; ``ir``, ``vis``: the sources. Each is a numpy array (H, W) or
            (H, W, 3) (uint8 as is, uint16 divided by 257, other integer types scaled by their
            range, floats taken as [0, 1] and multiplied by 255), a torch tensor (H, W),
            (1, H, W), (3, H, W) or (1, C, H, W) with values in [0, 1], or a path to an image
            file (read with ``ivfuse.io.read_array``). The three must share H and W; a gray
            source with a colour fused image is fine.
        metrics: names (case-insensitive, e.g. ``["EN", "mi", "Qabf"]``) or one name; None
            means the metrics of the convention's reference table, in table order (see
            :func:`ivfuse.metrics.list_metrics`), plus ROI-SSIM when ``roi`` is given.
        convention: ``"vifb"`` (default), ``"cddfuse"`` or ``"tang"``: which reference's
            numbers to reproduce (input handling and metric variants, see ``docs/metrics.md``).
        roi: optional (N, 4) boxes ``(x0, y0, x1, y1)`` in pixels or an (H, W) bool/float mask,
            for ROI-SSIM.

    Returns:
        Dict from canonical metric name to value (float; NaN where undefined, e.g. ROI-SSIM of
        an empty ROI).

    Raises:
        ValueError: unknown metric or convention (the message lists the valid ones), images of
            different H x W (the message gives the shapes), ROI-SSIM requested without ``roi``,
            or an unsupported array shape.

    >>> import numpy as np
    >>> img = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    >>> evaluate(img, img, img, metrics=["EN", "MSE"])
    {'EN': 5.0, 'MSE': 0.0}
    """
    convention = check_convention(convention)
    names = _resolve_names(metrics, convention, roi)
    f = to_float255(fused, "fused")
    i = to_float255(ir, "ir")
    v = to_float255(vis, "vis")
    if not (f.shape[:2] == i.shape[:2] == v.shape[:2]):
        raise ValueError(f"shape mismatch: fused {f.shape}, ir {i.shape}, vis {v.shape} (H and W must agree)")
    planes = prepare_planes(f, i, v, convention)
    return {name: _score(name, planes, convention, roi) for name in names}
