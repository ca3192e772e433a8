"""Per-image feature cache, so work that depends on one image only is done once.

Scoring several fused images against the same two sources (the usual benchmark loop) repeats
the source-side work of SSIM, VIF, Qabf, Qcb, Qcv, ...; a :class:`Memo` keeps those per-image
features. Keys are ``(tag, id(image))`` and each entry holds a reference to its image, so an id
can never be reused while its entry exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["Memo", "cached"]


class Memo:
    """Cache of per-image features.

    Features of the images passed as ``keep`` (the sources) persist for the memo's lifetime;
    features of any other image (the fused one) live in a transient store that
    :meth:`call_scope` starts afresh.

    Args:
        keep: images whose features persist.
    """

    def __init__(self, keep: Iterable[np.ndarray] = ()) -> None:
        self._keep = {id(a): a for a in keep}
        self._persistent: dict[tuple, tuple[np.ndarray, Any]] = {}
        self._transient: dict[tuple, tuple[np.ndarray, Any]] = {}

    def call_scope(self) -> Memo:
        """A memo sharing the persistent features, with an empty transient store."""
        scoped = Memo.__new__(Memo)
        scoped._keep = self._keep
        scoped._persistent = self._persistent
        scoped._transient = {}
        return scoped

    def get(self, tag: tuple, img: np.ndarray, compute: Callable[[np.ndarray], Any]) -> Any:
        """Return ``compute(img)``, computed once per ``(tag, img)``."""
        store = self._persistent if self._keep.get(id(img)) is img else self._transient
        key = (tag, id(img))
        hit = store.get(key)
        if hit is not None and hit[0] is img:
            return hit[1]
        value = compute(img)
        store[key] = (img, value)
        return value


def cached(memo: Memo | None, tag: tuple, img: np.ndarray, compute: Callable[[np.ndarray], Any]) -> Any:
    """``compute(img)`` through ``memo`` when there is one."""
    if memo is None:
        return compute(img)
    return memo.get(tag, img, compute)
