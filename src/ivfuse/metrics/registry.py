"""The metric table: names, direction and the conventions whose reference reports each metric."""

from __future__ import annotations

from dataclasses import dataclass

from .conventions import CONVENTIONS, check_convention

__all__ = ["METRICS", "MetricInfo", "list_metrics", "resolve_metric"]


@dataclass(frozen=True)
class MetricInfo:
    """Description of one metric.

    Attributes:
        name: canonical name, e.g. ``"Qabf"``.
        higher_is_better: False for CE, MSE, RMSE, Nabf and Qcv.
        description: one line.
        conventions: conventions whose reference table reports the metric (the metric works with
            every convention; elsewhere it uses that convention's input handling and the
            definition documented in ``docs/metrics.md``).
        function: name of the functional form in ``ivfuse.metrics``.
    """

    name: str
    higher_is_better: bool
    description: str
    conventions: tuple[str, ...]
    function: str


def _in(name: str) -> tuple[str, ...]:
    return tuple(c for c, conv in CONVENTIONS.items() if name in conv.metrics)


_TABLE = [
    # Stable table order: the eight most reported metrics first, then the rest.
    ("EN", True, "entropy of the fused image (bits)", "entropy"),
    ("SD", True, "standard deviation of the fused image", "standard_deviation"),
    ("SF", True, "spatial frequency of the fused image", "spatial_frequency"),
    ("AG", True, "average gradient of the fused image", "average_gradient"),
    ("MI", True, "mutual information MI(VI, F) + MI(IR, F)", "mutual_information"),
    ("VIF", True, "pixel-domain VIF, VIFp(VI, F) + VIFp(IR, F)", "vif"),
    ("Qabf", True, "edge information transferred from the sources (Xydeas-Petrovic)", "qabf"),
    ("SSIM", True, "structural similarity to the sources (sum or mean per convention)", "ssim"),
    ("CC", True, "mean correlation coefficient with the sources", "correlation_coefficient"),
    ("SCD", True, "sum of the correlations of differences", "scd"),
    ("PSNR", True, "peak signal-to-noise ratio (convention-specific)", "psnr"),
    ("MSE", False, "mean squared error to the sources (convention-specific range)", "mse"),
    ("RMSE", False, "root mean squared error (VIFB's definition under vifb)", "rmse"),
    ("CE", False, "cross entropy between source and fused histograms", "cross_entropy"),
    ("EI", True, "edge intensity (mean Sobel magnitude)", "edge_intensity"),
    ("Nabf", False, "fusion artefacts (Kumar's modified Nabf)", "nabf"),
    ("Qcb", True, "Chen-Blum perceptual quality", "qcb"),
    ("Qcv", False, "Chen-Varshney perceptual distortion", "qcv"),
    ("ROI-SSIM", True, "SSIM restricted to a region of interest (needs roi)", "roi_ssim"),
]

METRICS: dict[str, MetricInfo] = {
    name: MetricInfo(name, better, desc, _in(name), fn) for name, better, desc, fn in _TABLE
}

_ALIASES = {"vifp": "VIF"}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


_LOOKUP = {_key(n): n for n in METRICS} | {_key(k): v for k, v in _ALIASES.items()}


def resolve_metric(name: str) -> str:
    """Canonical name of a metric, case-insensitive (``"qabf"``, ``"ROI_SSIM"``, ``"vifp"``).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    canonical = _LOOKUP.get(_key(name)) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(METRICS)}")
    return canonical


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
    return [n for n in METRICS if convention in METRICS[n].conventions]
