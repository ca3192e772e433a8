"""The metric table: one declarative entry per metric, the single source of what each metric is.

Each :class:`MetricInfo` says what the metric is called, which way is better, which
conventions' reference tables report it, which inputs it needs, and how :func:`evaluate` scores
one plane triple with it. :func:`list_metrics` (also per convention), name resolution and
``evaluate`` all read this table; nothing else lists metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .._registry import Registry
from ._memo import Memo
from .conventions import CONVENTIONS, Planes, check_convention
from .gradient import nabf_planes, qabf_planes, average_gradient, edge_intensity, spatial_frequency
from .information import cross_entropy_planes, mutual_information_planes, entropy
from .perceptual import qcb_planes, qcv_planes, vif_planes
from .reference import mse_planes, psnr_planes, rmse_planes, roi_ssim_planes, ssim_planes
from .statistics import correlation_coefficient_planes, scd_planes, standard_deviation

__all__ = ["INPUTS", "METRICS", "MetricInfo", "PlaneScorer", "list_metrics", "resolve_metric"]


class PlaneScorer(Protocol):
    """How :func:`evaluate` scores one metric on one plane triple.

    Args:
        planes: fused, ir and vis planes, each (H, W) float64 in 0..255, after the convention's
            input handling.
        convention: canonical convention name.
        roi: (H, W) float64 ROI weights, or None when no roi was given.
        memo: per-image feature cache shared by the metrics of one call.

    Returns:
        The metric's value on this triple (NaN where undefined).
    """

    def __call__(self, planes: Planes, *, convention: str, roi: np.ndarray | None, memo: Memo) -> float: ...


INPUTS = ("fused", "ir", "vis", "roi")  # every input a metric can need, in argument order


@dataclass(frozen=True)
class MetricInfo:
    """Description of one metric: everything ivfuse knows about it, in one place.

    Attributes:
        name: canonical name, e.g. ``"Qabf"``.
        higher_is_better: False for CE, MSE, RMSE, Nabf and Qcv.
        description: one line.
        conventions: conventions whose reference table reports the metric (the metric works with
            every convention; elsewhere it uses that convention's input handling and the
            definition documented in ``docs/metrics.md``).
        function: name of the functional form in ``ivfuse.metrics``; it takes the inputs of
            ``inputs`` in that order, the sources and ``roi`` keyword-only.
        inputs: what the metric reads, a sub-tuple of :data:`INPUTS`: ``("fused",)`` for a
            statistic of the fused image alone, ``("fused", "ir", "vis")`` for a comparison with
            the sources, plus ``"roi"`` when it needs regions of interest.
        scorer: ``scorer(planes, *, convention, roi, memo) -> float`` (see :data:`PlaneScorer`).
        windowed: needs images of at least the convention's SSIM window on each side.
        aliases: other accepted names (matched case-insensitively, ignoring ``-``, ``_``, spaces).
        vifb_colour: how VIFB scores a colour image when that is not the mean over the R, G, B
            plane triples: ``vifb_colour(planes) -> float`` on the list of triples, or None.
    """

    name: str
    higher_is_better: bool
    description: str
    conventions: tuple[str, ...]
    function: str
    inputs: tuple[str, ...]
    scorer: PlaneScorer
    windowed: bool = False
    aliases: tuple[str, ...] = ()
    vifb_colour: Callable[[list[Planes]], float] | None = None

    @property
    def needs_roi(self) -> bool:
        """Whether the metric needs ``roi``."""
        return "roi" in self.inputs


_FUSED = ("fused",)
_SOURCES = ("fused", "ir", "vis")
_ALL3 = tuple(CONVENTIONS)  # reported by all three references
_VIFB = ("vifb",)
_PY = ("cddfuse", "tang")  # reported by CDDFuse's evaluator and Tang's scripts


def _side_by_side_sf(planes: list[Planes]) -> float:
    # VIFB indexes an (H, W, 3) array with two subscripts: it scores R, G, B side by side.
    return spatial_frequency(np.concatenate([p.fused for p in planes], axis=1), convention="vifb")


# The plane scorers (``*_planes``) take (visible, infrared, fused) planes; each row passes them in that order.
# fmt: off
_ENTRIES = [
    # Stable table order: the eight most reported metrics first, then the rest.
    MetricInfo(
        "EN", True, "entropy of the fused image (bits)", _ALL3, "entropy", _FUSED,
        lambda p, *, convention, roi, memo: entropy(p.fused, convention=convention),
    ),
    MetricInfo(
        "SD", True, "standard deviation of the fused image", _ALL3, "standard_deviation", _FUSED,
        lambda p, *, convention, roi, memo: standard_deviation(p.fused),
    ),
    MetricInfo(
        "SF", True, "spatial frequency of the fused image", _ALL3, "spatial_frequency", _FUSED,
        lambda p, *, convention, roi, memo: spatial_frequency(p.fused, convention=convention),
        vifb_colour=_side_by_side_sf,
    ),
    MetricInfo(
        "AG", True, "average gradient of the fused image", _ALL3, "average_gradient", _FUSED,
        lambda p, *, convention, roi, memo: average_gradient(p.fused, convention=convention),
    ),
    MetricInfo(
        "MI", True, "mutual information MI(VI, F) + MI(IR, F)", _ALL3, "mutual_information", _SOURCES,
        lambda p, *, convention, roi, memo: mutual_information_planes(p.vis, p.ir, p.fused, convention, memo),
    ),
    MetricInfo(
        "VIF", True, "pixel-domain VIF, VIFp(VI, F) + VIFp(IR, F)", _PY, "vif", _SOURCES,
        lambda p, *, convention, roi, memo: vif_planes(p.vis, p.ir, p.fused, convention, memo),
        aliases=("vifp",),
    ),
    MetricInfo(
        "Qabf", True, "edge information transferred from the sources (Xydeas-Petrovic)", _ALL3, "qabf", _SOURCES,
        lambda p, *, convention, roi, memo: qabf_planes(p.vis, p.ir, p.fused, convention, memo),
    ),
    MetricInfo(
        "SSIM", True, "structural similarity to the sources (sum or mean per convention)", _ALL3, "ssim", _SOURCES,
        lambda p, *, convention, roi, memo: ssim_planes(p.vis, p.ir, p.fused, convention, memo),
        windowed=True,
    ),
    MetricInfo(
        "CC", True, "mean correlation coefficient with the sources", _PY, "correlation_coefficient", _SOURCES,
        lambda p, *, convention, roi, memo: correlation_coefficient_planes(p.vis, p.ir, p.fused, memo),
    ),
    MetricInfo(
        "SCD", True, "sum of the correlations of differences", _PY, "scd", _SOURCES,
        lambda p, *, convention, roi, memo: scd_planes(p.vis, p.ir, p.fused, memo),
    ),
    MetricInfo(
        "PSNR", True, "peak signal-to-noise ratio (convention-specific)", _ALL3, "psnr", _SOURCES,
        lambda p, *, convention, roi, memo: psnr_planes(p.vis, p.ir, p.fused, convention),
    ),
    MetricInfo(
        "MSE", False, "mean squared error to the sources (convention-specific range)", _PY, "mse", _SOURCES,
        lambda p, *, convention, roi, memo: mse_planes(p.vis, p.ir, p.fused, convention),
    ),
    MetricInfo(
        "RMSE", False, "root mean squared error (VIFB's definition under vifb)", _VIFB, "rmse", _SOURCES,
        lambda p, *, convention, roi, memo: rmse_planes(p.vis, p.ir, p.fused, convention),
    ),
    MetricInfo(
        "CE", False, "cross entropy between source and fused histograms", _VIFB, "cross_entropy", _SOURCES,
        lambda p, *, convention, roi, memo: cross_entropy_planes(p.vis, p.ir, p.fused, memo),
    ),
    MetricInfo(
        "EI", True, "edge intensity (mean Sobel magnitude)", _VIFB, "edge_intensity", _FUSED,
        lambda p, *, convention, roi, memo: edge_intensity(p.fused),
    ),
    MetricInfo(
        "Nabf", False, "fusion artefacts (Kumar's modified Nabf)", ("tang",), "nabf", _SOURCES,
        lambda p, *, convention, roi, memo: nabf_planes(p.vis, p.ir, p.fused, memo),
    ),
    MetricInfo(
        "Qcb", True, "Chen-Blum perceptual quality", _VIFB, "qcb", _SOURCES,
        lambda p, *, convention, roi, memo: qcb_planes(p.vis, p.ir, p.fused, memo),
    ),
    MetricInfo(
        "Qcv", False, "Chen-Varshney perceptual distortion", _VIFB, "qcv", _SOURCES,
        lambda p, *, convention, roi, memo: qcv_planes(p.vis, p.ir, p.fused, memo),
    ),
    MetricInfo(
        "ROI-SSIM", True, "SSIM restricted to a region of interest (needs roi)", (), "roi_ssim", _SOURCES + ("roi",),
        lambda p, *, convention, roi, memo: roi_ssim_planes(p.vis, p.ir, p.fused, roi, convention, memo),
        windowed=True,
    ),
]
# fmt: on

def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


#: The metric table in its stable order: canonical name -> :class:`MetricInfo`; lookups ignore case,
#: ``-``, ``_`` and spaces and accept the aliases.
METRICS: Registry[MetricInfo] = Registry("metric", normalize=_key, sort=False)
for _m in _ENTRIES:
    METRICS.register(_m.name, _m, aliases=_m.aliases)


def resolve_metric(name: str) -> str:
    """Canonical name of a metric, case-insensitive (``"qabf"``, ``"ROI_SSIM"``, ``"vifp"``).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    return METRICS.canonical(name)


def list_metrics(convention: str | None = None) -> list[str]:
    """Metric names in the stable table order (EN, SD, SF, AG, MI, VIF, Qabf, SSIM, then the rest).

    Args:
        convention: None for every metric ivfuse computes; a convention name for the metrics of
            that convention's reference table (what ``evaluate(metrics=None)`` computes).

    Returns:
        List of canonical names.
    """
    if convention is None:
        return list(METRICS)
    convention = check_convention(convention)
    return [n for n, m in METRICS.items() if convention in m.conventions]
