"""Paired datasets: decoded, checked pairs with labels, random crops and flips, batching.

See :mod:`ivfuse.data` for the batch contract :func:`collate_pairs` produces.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..io import IMAGE_EXTENSIONS, ImageReadError, PairError, PairPaths, find_pairs, load_pair
from .boxes import DegradeBoxes, boxes_to_mask, crop_boxes, empty_boxes, flip_boxes, rot90_boxes
from .config import DataConfig, DatasetError
from .labels import find_label_sources, read_boxes, read_pair_mask
from .pseudo import pseudo_labels
from .sampler import sample_seed

__all__ = ["ConcatPairs", "PairedDataset", "collate_pairs", "training_pairs"]


@dataclass
class _Item:
    """One decoded pair with its full-size labels."""

    ir: torch.Tensor  # (H, W) float32
    vis: torch.Tensor  # (H, W) float32
    roi: torch.Tensor  # (H, W) bool
    mask: torch.Tensor  # (H, W) bool
    boxes: np.ndarray  # (N, 4)
    has_boxes: bool
    has_mask: bool


class _threads:
    """Temporarily set torch's intra-op thread count."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        self.old = torch.get_num_threads()
        if self.old != self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        if torch.get_num_threads() != self.old:
            torch.set_num_threads(self.old)


class PairedDataset(Dataset):
    """Infrared/visible pairs with labels, as random crops (training) or whole images.

    Every pair is decoded and checked when the dataset is built (unreadable files, size
    mismatches, unparseable labels, masks of the wrong size), and all problems are reported
    together in one :class:`DatasetError` before any training starts.

    Args:
        root: dataset folder with modality subfolders (or give ``ir_dir`` and ``vis_dir``).
        config: a :class:`DataConfig` (crop, flips, labels, pseudo-labels, cache); its
            ``path``/``ir_dir``/``vis_dir`` are used when ``root`` is None.
        train: random crops and flips (and ``config.degrade``, if set); otherwise whole images,
            no augmentation, labels as they are.
        ir_dir, vis_dir: explicit modality folders.
        max_pairs: keep only the first pairs (sorted by name).
        progress: show a progress bar while checking.

    Indexing: ``ds[i]`` or ``ds[(i, sample_seed)]``; returns a dict with ``ir``, ``vis``, ``roi``,
    ``mask`` ((1, h, w) float32), ``boxes`` ((N, 4) float32), ``has_boxes``, ``has_mask``, ``name``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        config: Any = None,
        train: bool = True,
        ir_dir: str | os.PathLike | None = None,
        vis_dir: str | os.PathLike | None = None,
        max_pairs: int | None = None,
        progress: bool = False,
    ) -> None:
        self.cfg = config if config is not None else DataConfig()
        self.train = train
        root = root if root is not None else (self.cfg.path or None)
        ir_dir = ir_dir if ir_dir is not None else (self.cfg.ir_dir or None)
        vis_dir = vis_dir if vis_dir is not None else (self.cfg.vis_dir or None)
        try:
            if root is not None:
                scan = find_pairs(root)
            elif ir_dir is not None and vis_dir is not None:
                scan = find_pairs(ir_dir=ir_dir, vis_dir=vis_dir)
            else:
                raise DatasetError("no training data: give a dataset folder (--data DIR) or both ir and vis folders")
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise DatasetError(str(exc)) from exc
        except DatasetError:
            raise
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        where = root if root is not None else f"{ir_dir} + {vis_dir}"
        if not scan.pairs:
            n_ir = sum(1 for p in scan.ir_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            n_vis = sum(1 for p in scan.vis_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            raise DatasetError(
                f"'{where}': no infrared/visible pairs (images are matched by file name; {scan.ir_dir.name}/ has "
                f"{n_ir} images, {scan.vis_dir.name}/ has {n_vis})"
            )
        self.scan = scan
        self.pairs: list[PairPaths] = scan.pairs[:max_pairs] if max_pairs else list(scan.pairs)
        label_root = Path(root) if root is not None else Path(ir_dir).parent
        self.labels = find_label_sources(label_root, self.cfg.boxes, self.cfg.masks)
        self.crop = int(self.cfg.crop)
        if train and self.crop < 1:
            raise DatasetError(f"crop must be >= 1, got {self.crop}")
        self.degrade: DegradeBoxes = getattr(self.cfg, "degrade", None) or DegradeBoxes()
        try:
            self.degrade.check()
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        self._cache: dict[int, _Item] = {}
        self._cache_enabled = self.cfg.cache == "yes"
        self._labels: dict[int, tuple] = {}  # labels are always kept: pseudo-labels cost more than decoding
        self._check(progress)

    # ---------------------------------------------------------------------------- loading

    def _load_item(self, i: int) -> _Item:
        pp = self.pairs[i]
        pair = load_pair(pp.ir, pp.vis, resize=self.cfg.resize, name=pp.name)
        ir, vis = pair.ir[0, 0].contiguous(), pair.vis[0, 0].contiguous()
        h, w = vis.shape
        labels = self._labels.get(i)
        if labels is None:
            labels = self._labels[i] = self._make_labels(pp, ir, h, w)
        boxes, has_boxes, bits, has_mask = labels
        mask = np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)
        roi = boxes_to_mask(boxes, h, w)
        return _Item(ir, vis, torch.from_numpy(roi), torch.from_numpy(mask), boxes, has_boxes, has_mask)

    def _make_labels(
        self, pp: PairPaths, ir: torch.Tensor, h: int, w: int
    ) -> tuple[np.ndarray, bool, np.ndarray, bool]:
        """(boxes, has_boxes, packed mask bits, has_mask) of a pair; kept for the whole run (about H*W/4 bytes)."""
        pcfg = self.cfg.pseudo
        boxes, has_boxes = empty_boxes(), False
        if pcfg.mode != "always" and self.labels.box_format:
            boxes, has_boxes = self._read_boxes(pp.name, w, h)
        mask, has_mask = None, False
        if pcfg.mode != "always":
            mask = read_pair_mask(self.labels, pp.name, w, h)
            has_mask = mask is not None
        if mask is None and has_boxes and self.cfg.masks_from_boxes:
            mask = boxes_to_mask(boxes, h, w).astype(bool)  # boxes but no mask files (MSRS, M3FD, VOC, COCO)
        need_pseudo = pcfg.mode == "always" or (pcfg.mode == "auto" and (not has_boxes or mask is None))
        if need_pseudo:
            p_mask, p_boxes = pseudo_labels(ir.numpy(), pcfg)
            if not has_boxes:
                boxes = p_boxes
            if mask is None:
                mask = p_mask
        if mask is None:
            mask = np.zeros((h, w), dtype=bool)
        return boxes, has_boxes, np.packbits(mask.ravel()), has_mask

    def _read_boxes(self, name: str, width: int, height: int) -> tuple[np.ndarray, bool]:
        return read_boxes(self.labels, name, width, height)

    def _item(self, i: int) -> _Item:
        item = self._cache.get(i)
        if item is None:
            item = self._load_item(i)
            if self._cache_enabled:
                self._cache[i] = item
        return item

    def _check(self, progress: bool) -> None:
        """Decode every pair once; collect every problem; fill the cache when it fits."""
        budget = float(self.cfg.cache_mb) * 2**20
        used = 0.0
        auto = self.cfg.cache == "auto"
        problems: list[str] = []
        sizes: list[tuple[int, int]] = []
        it: Any = range(len(self.pairs))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="checking pairs", unit="pair", leave=False)
        for i in it:
            try:
                with _threads(1):  # small tensors: extra intra-op threads only add contention
                    item = self._load_item(i)
            except (ImageReadError, PairError, DatasetError) as exc:
                problems.append(f"{self.pairs[i].name}: {exc}")
                continue
            h, w = item.vis.shape
            sizes.append((h, w))
            nbytes = 2 * 4 * h * w + 2 * h * w
            if self._cache_enabled or (auto and used + nbytes <= budget):
                self._cache[i] = item
                used += nbytes
        if auto:
            self._cache_enabled = len(self._cache) == len(self.pairs)
            if not self._cache_enabled:
                self._cache.clear()
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise DatasetError(
                f"{len(problems)} of {len(self.pairs)} training pairs are unusable:\n  {shown}{more}\n"
                "fix or remove them (pass --set data.resize=true to resample infrared onto the visible grid)"
            )
        self.sizes = sizes

    # ---------------------------------------------------------------------------- access

    def __len__(self) -> int:
        return len(self.pairs)

    def names(self) -> list[str]:
        return [p.name for p in self.pairs]

    def summary(self) -> str:
        n_box = n_mask = 0
        for lab in self._labels.values():
            n_box += lab[1]
            n_mask += lab[3]
        lab = self.labels.describe()
        cached = "cached in memory" if self._cache_enabled else "read on demand"
        extra = f", {len(self.scan.unmatched)} files without partner ignored" if self.scan.unmatched else ""
        annotated = f" ({n_box} with boxes, {n_mask} with masks)"
        return f"{len(self)} pairs from {self.scan.ir_dir.parent} ({cached}{extra}); {lab}{annotated}"

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            i, seed = int(key[0]), int(key[1])
        else:
            i, seed = int(key), sample_seed(0, 0, int(key))
        item = self._item(i)
        ir, vis = item.ir[None], item.vis[None]
        roi, mask = item.roi[None].float(), item.mask[None].float()
        boxes, has_boxes = item.boxes, item.has_boxes
        if self.train:
            ir, vis, roi, mask, boxes = self._augment(ir, vis, roi, mask, boxes, np.random.default_rng(seed))
            if self.degrade.active:  # weak-label study: after the crop, from the same sample seed
                boxes, kept = self.degrade(boxes, self.pairs[i].name, seed)
                has_boxes = has_boxes and kept
                if not kept or self.degrade.jitter > 0:
                    roi = torch.from_numpy(boxes_to_mask(boxes, *roi.shape[-2:]))[None].float()
        return {
            "ir": ir.contiguous(),
            "vis": vis.contiguous(),
            "roi": roi.contiguous(),
            "mask": mask.contiguous(),
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 4)),
            "has_boxes": has_boxes,
            "has_mask": item.has_mask,
            "name": self.pairs[i].name,
        }

    def _augment(self, ir, vis, roi, mask, boxes, rng: np.random.Generator):
        c = self.crop
        h, w = ir.shape[-2:]
        if h < c or w < c:  # pad bottom/right: images by reflection, labels by zeros
            ph, pw = max(c - h, 0), max(c - w, 0)
            img = _pad_reflect(torch.cat((ir, vis)), h + ph, w + pw)
            ir, vis = img[:1], img[1:]
            roi = torch.nn.functional.pad(roi, (0, pw, 0, ph))
            mask = torch.nn.functional.pad(mask, (0, pw, 0, ph))
            h, w = ir.shape[-2:]
        y = int(rng.integers(0, h - c + 1))
        x = int(rng.integers(0, w - c + 1))
        hflip = bool(rng.random() < 0.5)
        vflip = bool(rng.random() < 0.5)
        k = int(rng.integers(0, 4))
        sl = (slice(None), slice(y, y + c), slice(x, x + c))
        ir, vis, roi, mask = ir[sl], vis[sl], roi[sl], mask[sl]
        boxes = crop_boxes(boxes, x, y, c, c)
        if self.cfg.hflip and hflip:
            ir, vis, roi, mask = (t.flip(-1) for t in (ir, vis, roi, mask))
            boxes = flip_boxes(boxes, c, c, horizontal=True)
        if self.cfg.vflip and vflip:
            ir, vis, roi, mask = (t.flip(-2) for t in (ir, vis, roi, mask))
            boxes = flip_boxes(boxes, c, c, horizontal=False)
        if self.cfg.rot90 and k:
            ir, vis, roi, mask = (torch.rot90(t, k, dims=(-2, -1)) for t in (ir, vis, roi, mask))
            boxes = rot90_boxes(boxes, c, c, k)
        return ir, vis, roi, mask, boxes


class ConcatPairs(Dataset):
    """Several :class:`PairedDataset` folders as one training set (``--data A --data B``).

    Index ``i`` runs through the first folder's pairs, then the second's, ...; a sample's name is
    prefixed with its folder's name (``msrs/00012N``) so names stay unique. Each folder keeps its
    own label sources (one may have boxes, another masks or none).
    """

    def __init__(self, parts: Sequence[PairedDataset]) -> None:
        if not parts:
            raise DatasetError("no training data")
        self.parts = list(parts)
        self.train = self.parts[0].train
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.sizes = [s for p in self.parts for s in p.sizes]
        self.labels = _JoinedLabels([p.labels for p in self.parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"pair index {i} outside [0, {len(self)})")
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        return k, i - int(self._starts[k])

    def _prefix(self, k: int) -> str:
        return self.parts[k].scan.ir_dir.parent.name

    def names(self) -> list[str]:
        return [f"{self._prefix(k)}/{n}" for k, p in enumerate(self.parts) for n in p.names()]

    def summary(self) -> str:
        return f"{len(self)} pairs from {len(self.parts)} folders: " + "; ".join(p.summary() for p in self.parts)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        i, seed = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), None)
        k, j = self._locate(i)
        item = self.parts[k][(j, seed) if seed is not None else j]
        item["name"] = f"{self._prefix(k)}/{item['name']}"
        return item


class _JoinedLabels:
    """What :meth:`describe` of several folders' label sources says."""

    def __init__(self, sources) -> None:
        self.sources = list(sources)

    def describe(self) -> str:
        return "; ".join(src.describe() for src in self.sources)


def training_pairs(config: DataConfig, train: bool = True, progress: bool = False) -> PairedDataset | ConcatPairs:
    """The training set a :class:`DataConfig` names: ``path`` (or ``ir_dir``/``vis_dir``) and every ``more`` folder.

    Every folder is checked before anything is returned; the problems of all of them are reported
    together in one :class:`DatasetError`.
    """
    first = None
    problems: list[str] = []
    try:
        first = PairedDataset(config=config, train=train, progress=progress)
    except DatasetError as exc:
        problems.append(str(exc))
    parts = [first]
    for folder in config.more:
        try:
            parts.append(PairedDataset(folder, config, train=train, progress=progress))
        except DatasetError as exc:
            problems.append(str(exc) if str(folder) in str(exc) else f"'{folder}': {exc}")
    if problems:
        raise DatasetError("\n".join(problems))
    return first if len(parts) == 1 else ConcatPairs(parts)


def _pad_reflect(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad (C, H, W) at the bottom/right to (C, height, width) by reflection, in rounds (replicating 1-pixel sides)."""
    x = img[None]
    while x.shape[-2] < height or x.shape[-1] < width:
        hh, ww = x.shape[-2:]
        ph, pw = min(max(height - hh, 0), hh - 1), min(max(width - ww, 0), ww - 1)
        if (height > hh and ph == 0) or (width > ww and pw == 0):
            x = torch.nn.functional.pad(x, (0, max(width - ww, 0), 0, max(height - hh, 0)), mode="replicate")
        else:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
    return x[0]


def collate_pairs(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack dataset samples into the batch dict of the training contract (see the module docstring)."""
    if not samples:
        raise ValueError("collate_pairs: empty batch")
    shapes = {tuple(s["ir"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"collate_pairs: samples differ in size {sorted(shapes)}; batch whole images one at a time")
    out: dict[str, Any] = {k: torch.stack([s[k] for s in samples]) for k in ("ir", "vis", "roi", "mask")}
    out["boxes"] = [s["boxes"] for s in samples]
    out["has_boxes"] = torch.tensor([bool(s["has_boxes"]) for s in samples])
    out["has_mask"] = torch.tensor([bool(s["has_mask"]) for s in samples])
    out["name"] = [s["name"] for s in samples]
    return out
