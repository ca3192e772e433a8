"""Modality statistics of infrared/visible pairs (PoMAI, IJCAI 2025, Sec. 1 and Fig. 1).

For every pair four measures are computed on the infrared image and on the visible image (gray,
BT.601 luminance, intensities in [0, 1]): the gradient change rate (GCR), the variance of the
Laplacian (Lap), the entropy (H) and the L1 norm (L1). The statistic P of a measure is the share of
pairs where the infrared value exceeds the visible one, and the share where the visible value
exceeds the infrared one (Fig. 1a). The Jensen-Shannon divergence between each pair's two
intensity histograms measures how differently the modalities are distributed, and K-Means groups
the pairs by it (Fig. 1b).

The paper names the measures but gives no formula for any of them; the definitions here are the
common ones, and GCR, which has no common definition, is chosen and explained in
:func:`gradient_change_rate`. All formulas are written out in docs/downstream.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .io import PairPaths

__all__ = [
    "MEASURES",
    "PairStats",
    "Analysis",
    "gradient_change_rate",
    "laplacian_variance",
    "entropy",
    "l1_norm",
    "histogram",
    "js_divergence",
    "p_statistics",
    "kmeans",
    "standardise",
    "analyze_pairs",
]

#: Histogram bins of the entropy and the JS divergence: the 256 levels of an 8-bit image.
BINS = 256


def _check_gray(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected a gray (H, W) image, got shape {a.shape}")
    return a


def gradient_change_rate(x: np.ndarray) -> float:
    """Gradient change rate: how fast the edge strength changes from a pixel to its neighbours.

    With forward differences ``gx = x[i, j+1] - x[i, j]`` and ``gy = x[i+1, j] - x[i, j]`` on the
    (H-1, W-1) grid where both exist, the gradient magnitude is ``g = sqrt(gx**2 + gy**2)`` and

        GCR = (mean |g[i, j+1] - g[i, j]| + mean |g[i+1, j] - g[i, j]|) / 2.

    The paper does not define GCR. This choice measures the rate at which the gradient changes,
    a second-order quantity: it is zero on flat areas and on constant ramps (a smooth illumination
    gradient is not structure), small where a few isolated edges stand on a smooth background
    (the sparse case), and large in dense texture. Intensities are in [0, 1], so the value does
    not depend on the bit depth and lies in [0, sqrt(2)].

    Args:
        x: (H, W) gray image in [0, 1], H and W at least 3.

    Returns:
        GCR, a float >= 0.
    """
    a = _check_gray(x)
    if min(a.shape) < 3:
        raise ValueError(f"GCR needs an image of at least 3x3 pixels, got {a.shape[1]}x{a.shape[0]}")
    gx = a[:-1, 1:] - a[:-1, :-1]
    gy = a[1:, :-1] - a[:-1, :-1]
    g = np.hypot(gx, gy)
    return float((np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean()) / 2)


def laplacian_variance(x: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels.

    ``L[i, j] = x[i-1, j] + x[i+1, j] + x[i, j-1] + x[i, j+1] - 4 x[i, j]`` for 0 < i < H-1,
    0 < j < W-1 (no padding, so the border adds no artificial edges); Lap = mean((L - mean L)**2)
    (population variance) on intensities in [0, 1]. On 0..255 intensities the value is 255**2 times
    larger.

    Args:
        x: (H, W) gray image in [0, 1], H and W at least 3.
    """
    a = _check_gray(x)
    if min(a.shape) < 3:
        raise ValueError(f"the Laplacian needs an image of at least 3x3 pixels, got {a.shape[1]}x{a.shape[0]}")
    lap = a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] - 4.0 * a[1:-1, 1:-1]
    return float(lap.var())


def histogram(x: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Normalised intensity histogram: ``x`` in [0, 1] quantised to ``round(x * (bins - 1))``.

    Returns:
        (bins,) float64 probabilities summing to 1.
    """
    a = _check_gray(x)
    levels = np.clip(np.rint(a * (bins - 1)), 0, bins - 1).astype(np.int64)
    counts = np.bincount(levels.ravel(), minlength=bins).astype(np.float64)
    return counts / counts.sum()


def entropy(x: np.ndarray, bins: int = BINS) -> float:
    """Shannon entropy in bits of the 256-level histogram: ``H = -sum_k p_k log2 p_k`` (0 log 0 = 0)."""
    p = histogram(x, bins)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def l1_norm(x: np.ndarray) -> float:
    """L1 norm per pixel: ``sum |x| / (H W)``, so that images of different sizes compare.

    For intensities in [0, 1] this is the mean intensity: a dark image with a few bright targets
    (a night-time infrared frame) has a small L1 norm.
    """
    a = _check_gray(x)
    return float(np.abs(a).mean())


#: The measures of Fig. 1a, in the paper's order: short name -> function of a gray [0, 1] image.
MEASURES = {"GCR": gradient_change_rate, "Lap": laplacian_variance, "H": entropy, "L1": l1_norm}


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions, natural logarithm: in [0, ln 2].

    ``JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2`` and
    ``KL(p || m) = sum_k p_k ln(p_k / m_k)`` over the k where ``p_k > 0``. Identical histograms
    give 0, histograms with no level in common give ln 2 (1 bit). The inputs are normalised to sum 1.

    >>> round(js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])), 6) == round(math.log(2), 6)
    True
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    if p.shape != q.shape:
        raise ValueError(f"JS divergence of histograms of different lengths: {p.size} and {q.size}")
    if p.sum() <= 0 or q.sum() <= 0 or (p < 0).any() or (q < 0).any():
        raise ValueError("JS divergence needs two non-negative histograms with some mass")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log(a[nz] / m[nz])).sum())

    return max(0.0, (kl(p) + kl(q)) / 2)


def p_statistics(ir_values: Sequence[float], vis_values: Sequence[float]) -> tuple[float, float]:
    """The statistic P of one measure over N pairs: (share with F(I) > F(V), share with F(V) > F(I)).

    Ties count in neither share, so the two add up to 1 minus the share of ties.

    >>> p_statistics([3, 1, 2, 5], [1, 2, 2, 4])
    (0.5, 0.25)
    """
    a = np.asarray(ir_values, dtype=np.float64)
    b = np.asarray(vis_values, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"P needs as many infrared as visible values, at least one: got {a.size} and {b.size}")
    d = a - b
    return float((d > 0).mean()), float((d < 0).mean())


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns of an (N, D) array to zero mean and unit (population) standard deviation; a constant
    column becomes zeros."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    sd = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _kmeans_once(x: np.ndarray, k: int, rng: np.random.Generator, iters: int) -> tuple[np.ndarray, np.ndarray, float]:
    n = len(x)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):  # k-means++: each next seed drawn with probability proportional to D(x)^2
        d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        centres.append(x[rng.choice(n, p=d2 / total)] if total > 0 else x[rng.integers(n)])
    c = np.asarray(centres, dtype=np.float64)
    labels = np.full(n, -1)
    for _ in range(iters):
        d2 = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        new = d2.argmin(axis=1)
        for j in range(k):
            members = x[new == j]
            if len(members):
                c[j] = members.mean(axis=0)
            else:  # an empty cluster takes the point farthest from its centre
                far = int(d2[np.arange(n), new].argmax())
                c[j], new[far] = x[far], j
        if np.array_equal(new, labels):
            break
        labels = new
    inertia = float(((x - c[labels]) ** 2).sum())
    return labels, c, inertia


def kmeans(
    x: np.ndarray, k: int = 3, seed: int = 0, n_init: int = 10, iters: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """K-Means (Lloyd's algorithm, k-means++ seeding) with ``n_init`` seeded restarts; the lowest
    within-cluster sum of squares wins.

    Clusters are numbered by their centre's first coordinate, ascending, so the numbering does not
    depend on the seed.

    Args:
        x: (N, D) or (N,) points.
        k: number of clusters, 1 <= k <= N.
        seed: seed of the random generator: the same seed gives the same clusters.

    Returns:
        (labels (N,) int in [0, k), centres (k, D)).
    """
    pts = np.asarray(x, dtype=np.float64)
    if pts.ndim == 1:
        pts = pts[:, None]
    if not 1 <= k <= len(pts):
        raise ValueError(f"K-Means with {k} clusters needs at least {k} points, got {len(pts)}")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(max(1, n_init)):
        run = _kmeans_once(pts, k, rng, iters)
        if best is None or run[2] < best[2] - 1e-12:
            best = run
    labels, centres, _ = best
    order = np.argsort(centres[:, 0], kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[labels], centres[order]


@dataclass
class PairStats:
    """The measures of one pair.

    Attributes:
        name: pair name.
        ir, vis: measure name -> value for the infrared and the visible image.
        js: Jensen-Shannon divergence (nats) of their intensity histograms.
        cluster: the pair's K-Means cluster (-1 before clustering).
    """

    name: str
    ir: dict[str, float]
    vis: dict[str, float]
    js: float
    cluster: int = -1


@dataclass
class Analysis:
    """What :func:`analyze_pairs` found.

    Attributes:
        pairs: per-pair statistics, in the order of the input.
        p: measure -> (share of pairs with infrared > visible, share with visible > infrared).
        clusters: number of clusters; cluster_on: "js" or "all" (the features clustered).
        skipped: (pair name, reason) of pairs that could not be read.
    """

    pairs: list[PairStats]
    p: dict[str, tuple[float, float]]
    clusters: int
    cluster_on: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def cluster_summary(self) -> list[dict]:
        """Per cluster: its size and the min/mean/max of the JS divergence of its pairs."""
        out = []
        for c in range(self.clusters):
            js = np.array([s.js for s in self.pairs if s.cluster == c])
            out.append({"cluster": c, "pairs": int(js.size), "js_mean": float(js.mean()) if js.size else math.nan,
                        "js_min": float(js.min()) if js.size else math.nan,
                        "js_max": float(js.max()) if js.size else math.nan})
        return out


def pair_stats(name: str, ir: np.ndarray, vis: np.ndarray) -> PairStats:
    """The four measures of each gray [0, 1] image and their histograms' JS divergence."""
    return PairStats(name, {k: f(ir) for k, f in MEASURES.items()}, {k: f(vis) for k, f in MEASURES.items()},
                     js_divergence(histogram(ir), histogram(vis)))


def cluster_features(stats: Sequence[PairStats], cluster_on: str = "js") -> np.ndarray:
    """The (N, D) standardised features K-Means groups: the JS divergence alone ("js"), or the JS
    divergence and the eight measures (four per modality, "all")."""
    cols = [[s.js for s in stats]]
    if cluster_on == "all":
        cols += [[getattr(s, side)[m] for s in stats] for side in ("ir", "vis") for m in MEASURES]
    elif cluster_on != "js":
        raise ValueError(f"cluster features must be 'js' or 'all', got '{cluster_on}'")
    return standardise(np.asarray(cols, dtype=np.float64).T)


def analyze_pairs(pairs: Sequence[PairPaths], clusters: int = 3, cluster_on: str = "js", seed: int = 0,
                  progress: bool = False) -> Analysis:
    """Measure every pair, compute P per measure, cluster the pairs.

    An unreadable image skips its pair (listed in ``skipped``); the others go on.

    Args:
        pairs: from :func:`ivfuse.io.find_pairs`.
        clusters: K of K-Means.
        cluster_on: "js" (the JS divergence, as in Fig. 1b) or "all" (JS and the eight measures).
        seed: K-Means seed.

    Raises:
        ValueError: no pair could be read, or fewer readable pairs than clusters.
    """
    from tqdm import tqdm

    from .io import as_gray, read_image

    if clusters < 1:
        raise ValueError(f"--clusters must be at least 1, got {clusters}")
    if cluster_on not in ("js", "all"):
        raise ValueError(f"cluster features must be 'js' or 'all', got '{cluster_on}'")
    stats, skipped = [], []
    for pp in tqdm(pairs, desc="analysing", unit="pair", disable=not progress, dynamic_ncols=True):
        try:
            ir, vis = as_gray(read_image(pp.ir)), as_gray(read_image(pp.vis))
            stats.append(pair_stats(pp.name, ir, vis))
        except (OSError, ValueError) as exc:
            skipped.append((pp.name, " ".join(str(exc).split())))
    if not stats:
        raise ValueError(f"none of the {len(pairs)} pairs could be read (first: {skipped[0][0]}: {skipped[0][1]})"
                         if skipped else "no pairs to analyse")
    if clusters > len(stats):
        raise ValueError(f"--clusters {clusters} needs at least {clusters} readable pairs, got {len(stats)}")
    p = {m: p_statistics([s.ir[m] for s in stats], [s.vis[m] for s in stats]) for m in MEASURES}
    labels, _ = kmeans(cluster_features(stats, cluster_on), clusters, seed=seed)
    for s, c in zip(stats, labels):
        s.cluster = int(c)
    result = Analysis(stats, p, clusters, cluster_on, skipped)
    if cluster_on == "all":  # number the clusters by mean JS, as the "js" features do
        order = np.argsort([c["js_mean"] for c in result.cluster_summary()], kind="stable")
        rank = {int(old): new for new, old in enumerate(order)}
        for s in stats:
            s.cluster = rank[s.cluster]
    return result
