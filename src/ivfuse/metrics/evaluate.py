"""``evaluate`` and ``FusionEvaluator``: score fused images against two sources under a convention."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ._inputs import to_float255
from ._memo import Memo
from .conventions import DEFAULT_CONVENTION, Planes, check_convention, prepare_fused, prepare_sources
from .reference import ssim_min_size
from .registry import METRICS, list_metrics, resolve_metric
from .roi import roi_mask

__all__ = ["FusionEvaluator", "evaluate"]


def _resolve_names(metrics: str | Iterable[str] | None, convention: str, roi) -> list[str]:
    if metrics is None:
        names = list_metrics(convention)
        # With regions given, the metrics that need them are added after the convention's table.
        return names + [n for n, m in METRICS.items() if m.needs_roi] if roi is not None else names
    if isinstance(metrics, str):
        metrics = [metrics]
    names: list[str] = []
    for m in metrics:
        canonical = resolve_metric(m)
        if canonical not in names:
            names.append(canonical)
    for name in names:
        if METRICS[name].needs_roi and roi is None:
            raise ValueError(f"{name} needs roi: pass boxes (N, 4) or a mask (H, W)")
    return names


def _first_equal(planes: list[Planes]) -> list[int]:
    """For each plane triple, the index of the first triple with the same contents.

    Under ``vifb`` a colour image is scored per channel; a gray image stored as RGB (as TNO
    and RoadScene often are) has three equal channels, and equal triples score equal values,
    so each distinct triple is scored once.
    """

    def same(p: Planes, q: Planes) -> bool:
        pairs = ((p.fused, q.fused), (p.vis, q.vis), (p.ir, q.ir))
        return all(x is y or np.array_equal(x, y) for x, y in pairs)

    first: list[int] = []
    for k, p in enumerate(planes):
        first.append(next((j for j in sorted(set(first)) if same(planes[j], p)), k))
    return first


class FusionEvaluator:
    """Scores fused images against one fixed pair of sources (class form of :func:`evaluate`).

    Source-side work (SSIM statistics, VIF pyramids, edge maps, contrast maps, histograms) is
    done once and reused for every fused image, which makes scoring each further method on the
    same pair about 40 % cheaper than calling :func:`evaluate` for it. The per-source features
    stay in memory for the evaluator's lifetime (for all metrics, roughly twenty image-sized
    float64 arrays per source plane).

    Args:
        ir: infrared source, any input type :func:`evaluate` accepts.
        vis: visible source, same types; H and W must match ``ir``.
        metrics: names (case-insensitive) or None for the convention's reference table.
        convention: ``"vifb"`` (default), ``"cddfuse"`` or ``"tang"``.
        roi: optional boxes (N, 4) or mask (H, W) for ROI-SSIM.

    >>> import numpy as np
    >>> ir = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    >>> score = FusionEvaluator(ir, ir.T, metrics=["MSE"], convention="cddfuse")
    >>> score(ir)["MSE"] == score(ir.T)["MSE"]
    True
    """

    def __init__(
        self,
        ir,
        vis,
        metrics: str | Iterable[str] | None = None,
        convention: str = DEFAULT_CONVENTION,
        roi=None,
    ) -> None:
        convention = check_convention(convention)
        names = _resolve_names(metrics, convention, roi)
        self._setup(to_float255(ir, "ir", True), to_float255(vis, "vis", True), names, convention, roi)

    @classmethod
    def _from_arrays(cls, ir: np.ndarray, vis: np.ndarray, names: list[str], convention: str, roi) -> FusionEvaluator:
        self = cls.__new__(cls)
        self._setup(ir, vis, names, convention, roi)
        return self

    def _setup(self, ir: np.ndarray, vis: np.ndarray, names: list[str], convention: str, roi) -> None:
        if ir.shape[:2] != vis.shape[:2]:
            raise ValueError(f"shape mismatch: ir {ir.shape}, vis {vis.shape} (H and W must agree)")
        if any(METRICS[n].windowed for n in names) and min(ir.shape[:2]) < ssim_min_size(convention):
            raise ValueError(
                f"SSIM under {convention!r} needs images of at least {ssim_min_size(convention)} pixels per side, "
                f"got {ir.shape}"
            )
        self.metrics = names
        self.convention = convention
        self._ir = ir
        self._vis = vis
        self._roi = roi_mask(roi, ir.shape[:2]) if roi is not None else None
        self._prepared: dict[bool, tuple[list[tuple[np.ndarray, np.ndarray]], Memo]] = {}

    def _sources(self, fused_is_colour: bool) -> tuple[list[tuple[np.ndarray, np.ndarray]], Memo]:
        key = fused_is_colour and self.convention == "vifb"
        if key not in self._prepared:
            pairs = prepare_sources(self._ir, self._vis, self.convention, key)
            self._prepared[key] = (pairs, Memo(keep=[x for pair in pairs for x in pair]))
        return self._prepared[key]

    def _score_float255(self, fused: np.ndarray) -> dict[str, float]:
        if fused.shape[:2] != self._ir.shape[:2]:
            raise ValueError(
                f"shape mismatch: fused {fused.shape}, ir {self._ir.shape}, vis {self._vis.shape} (H and W must agree)"
            )
        pairs, memo = self._sources(fused.ndim == 3)
        memo = memo.call_scope()
        planes = [Planes(fused=f, ir=i, vis=v) for f, (v, i) in zip(prepare_fused(fused, self.convention), pairs)]
        first = _first_equal(planes)
        return {name: self._score(name, planes, first, memo) for name in self.metrics}

    def _score(self, name: str, planes: list[Planes], first: list[int], memo: Memo) -> float:
        info = METRICS[name]
        if info.vifb_colour is not None and self.convention == "vifb" and len(planes) > 1:
            return info.vifb_colour(planes)
        values: dict[int, float] = {}
        for k in sorted(set(first)):
            values[k] = info.scorer(planes[k], convention=self.convention, roi=self._roi, memo=memo)
        # The mean over every plane, repeats included: the same number as scoring each plane.
        return float(np.mean([values[k] for k in first]))

    def __call__(self, fused) -> dict[str, float]:
        """Score one fused image.

        Args:
            fused: same input types as :func:`evaluate`; H and W must match the sources.

        Returns:
            Dict from canonical metric name to value.
        """
        return self._score_float255(to_float255(fused, "fused", True))


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
        fused: the fused image: a numpy array (H, W) or (H, W, 3) (uint8 as is, uint16
            divided by 257, other integer types scaled by their range, floats taken as [0, 1]
            and multiplied by 255), a torch tensor (H, W), (1, H, W), (3, H, W) or (1, C, H, W)
            with values in [0, 1], or a path to an image file (read with
            ``ivfuse.io.read_array``).
        ir: the infrared source, same types. H and W must match the fused image's; a gray
            source with a colour fused image is fine.
        vis: the visible source, same types and size rule.
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
    f = to_float255(fused, "fused", True)
    i = to_float255(ir, "ir", True)
    v = to_float255(vis, "vis", True)
    if not (f.shape[:2] == i.shape[:2] == v.shape[:2]):
        raise ValueError(f"shape mismatch: fused {f.shape}, ir {i.shape}, vis {v.shape} (H and W must agree)")
    return FusionEvaluator._from_arrays(i, v, names, convention, roi)._score_float255(f)
