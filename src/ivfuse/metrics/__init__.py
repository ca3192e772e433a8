"""Image fusion metrics with the conventions of the three reference evaluators.

>>> from ivfuse.metrics import evaluate, list_metrics
>>> list_metrics("vifb")[:4]
['EN', 'SD', 'SF', 'AG']

``evaluate(fused, ir, vis, metrics=None, convention="vifb", roi=None)`` scores a fused image;
every metric also has a functional form on single-channel float64 arrays in 0..255 (e.g.
:func:`entropy`, :func:`mutual_information`, :func:`qabf`). See ``docs/metrics.md``.
"""

from .conventions import CONVENTIONS, DEFAULT_CONVENTION, Convention
from .evaluate import FusionEvaluator, evaluate
from .gradient import average_gradient, edge_intensity, nabf, qabf, spatial_frequency
from .information import cross_entropy, entropy, mutual_information, mutual_information_pair
from .perceptual import qcb, qcv, vif, vifp
from .reference import mse, psnr, rmse, roi_ssim, ssim, ssim_map
from .registry import METRICS, MetricInfo, list_metrics
from .roi import roi_mask
from .statistics import correlation, correlation_coefficient, scd, standard_deviation

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "METRICS",
    "Convention",
    "FusionEvaluator",
    "MetricInfo",
    "average_gradient",
    "correlation",
    "correlation_coefficient",
    "cross_entropy",
    "edge_intensity",
    "entropy",
    "evaluate",
    "list_metrics",
    "mse",
    "mutual_information",
    "mutual_information_pair",
    "nabf",
    "psnr",
    "qabf",
    "qcb",
    "qcv",
    "rmse",
    "roi_mask",
    "roi_ssim",
    "scd",
    "spatial_frequency",
    "ssim",
    "ssim_map",
    "standard_deviation",
    "vif",
    "vifp",
]
