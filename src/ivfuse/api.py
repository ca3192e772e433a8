"""The user-facing functions: fuse one pair, fuse a folder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import numpy as np
import torch
from torch import nn

from .infer import run_model, select_device
from .io import (
    IMAGE_EXTENSIONS,
    PairPaths,
    check_output_format,
    check_writable_folder,
    find_pairs,
    is_within,
    load_pair,
    restore_color,
    same_file,
    write_image,
)
from .models import create_model, get_model_entry

__all__ = ["DEFAULT_MODEL", "FolderResult", "check_fuse_output", "fuse", "fuse_folder", "resolve_model"]

#: The model ``fuse``, ``ivfuse fuse`` and ``ivfuse demo`` use when none is named: the best of the
#: trained networks in the benchmark tables (docs/benchmark/; README says why).
DEFAULT_MODEL = "fusionnet_cpu"

ModelLike = Union[str, nn.Module]


def resolve_model(model: ModelLike = DEFAULT_MODEL, checkpoint_path: str | os.PathLike | None = None) -> nn.Module:
    """A model instance from a registry name (with its shipped weights) or an instance."""
    if isinstance(model, nn.Module):
        return model.eval()
    entry = get_model_entry(model)
    if checkpoint_path is not None:
        return create_model(model, checkpoint_path=checkpoint_path)
    return create_model(model, pretrained=entry.trainable)


def check_fuse_output(output: str | os.PathLike, sources=(), *, bit_depth: int = 8, map_names=(),
                      overwrite: bool = False) -> Path:
    """Refuse, before any work, an output that cannot be written or would replace a source.

    Args:
        output: the fused image's path.
        sources: the input image paths (non-path inputs are ignored).
        map_names: names of maps written beside the output (``<stem>_<name>.png``), checked too.
        overwrite: allow replacing an existing output (never a source).

    Raises:
        ValueError: bad extension or bit depth, or the output is one of the sources.
        FileExistsError: the output exists and ``overwrite`` is false.
        PermissionError / NotADirectoryError: its folder cannot be written.
    """
    out = check_output_format(output, bit_depth)
    targets = [out, *_maps_paths(out, map_names).values()]
    for t in targets:
        for src in sources:
            if isinstance(src, (str, os.PathLike)) and same_file(t, src):
                raise ValueError(f"'{t}': output would replace the input '{src}'; choose another output path")
    check_writable_folder(out.parent)
    if not overwrite:
        for t in targets:
            if t.exists():
                raise FileExistsError(f"'{t}': output exists and was not replaced (overwrite it explicitly)")
    return out



def _maps_paths(output: Path, names) -> dict[str, Path]:
    return {k: output.with_name(f"{output.stem}_{k}.png") for k in names}


def _registered(ir, vis, register: bool | str, name: str = "") -> tuple:
    """(ir, vis) as given, or with the infrared registered onto the visible grid (``register``: a method or True)."""
    if not register:
        return ir, vis
    from .registration import registered_for_fusion

    method = "homography" if register is True else str(register)
    moved, vis_img, _ = registered_for_fusion(ir, vis, method=method, name=name)
    return moved, vis_img


def fuse(
    ir,
    vis,
    model: ModelLike = DEFAULT_MODEL,
    *,
    output: str | os.PathLike | None = None,
    resize: bool = False,
    bit_depth: int = 8,
    device: str = "auto",
    dtype: str = "float32",
    checkpoint_path: str | os.PathLike | None = None,
    save_maps: bool = False,
    tile: int | str | None = "auto",
    overwrite: bool = False,
    register: bool | str = False,
) -> np.ndarray:
    """Fuse one infrared/visible pair.

    The network fuses the infrared image with the visible luminance; a colour visible image's
    chroma is put back, so the result has the visible image's size and colour.

    Args:
        ir: infrared (or MRI) image: path, array (H, W[, C]) or tensor.
        vis: visible (or CT/PET/SPECT) image: path, array or tensor.
        model: registry name or a model instance.
        output: if given, the result is written there (atomically); the extension picks the format.
        resize: resample the infrared image onto the visible grid when sizes differ.
        bit_depth: 8 or 16 bits per sample for ``output``.
        device: "auto", "cpu" or "cuda".
        dtype: "float32", "float16" or "bfloat16" compute.
        checkpoint_path: safetensors weights to use instead of the shipped ones.
        save_maps: also write the model's maps (attention, alpha, foreground) next to ``output``.
        tile: "auto" (tile only images too large for the available memory), None/0 (never), or a
            tile side in pixels; tiles overlap and are blended without seams.
        overwrite: replace an existing ``output`` (an input is never replaced).
        register: register the infrared image onto the visible grid first (needs the ``cv`` extra):
            True or "homography", "flow", "both" (see :func:`ivfuse.registration.estimate`); where
            the infrared does not reach, the visible luminance stands in for it.

    Returns:
        The fused image, float32 in [0, 1], (H, W, 3) for a colour visible image, else (H, W).

    Raises:
        FileExistsError: ``output`` exists and ``overwrite`` is false (checked before any work).
        ValueError: ``output`` is one of the inputs, or cannot be encoded (extension, bit depth).
    """
    dev = select_device(device)
    net = resolve_model(model, checkpoint_path)
    if output is not None:
        check_fuse_output(output, (ir, vis), bit_depth=bit_depth, overwrite=overwrite)
    pair = load_pair(*_registered(ir, vis, register), resize=resize)
    fused, maps = run_model(net, pair.ir, pair.vis, device=dev, dtype=dtype, return_maps=True, tile=tile)
    result = restore_color(fused, pair.chroma)
    if output is not None:
        out = Path(output)
        if save_maps:  # the map names are known only now: check them before writing anything
            check_fuse_output(out, (ir, vis), bit_depth=bit_depth, map_names=maps, overwrite=overwrite)
        write_image(out, result, bit_depth=bit_depth)
        if save_maps:
            for k, p in _maps_paths(out, maps).items():
                write_image(p, maps[k][0, 0].numpy())
    return result


@dataclass
class FolderResult:
    """Outcome of :func:`fuse_folder`.

    Attributes:
        written: output files, one per fused pair.
        failed: (pair name, error message) for each pair that could not be fused.
        unmatched: input files without a partner (not fused).
        skipped: outputs that existed already and were left as they were.
    """

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def fuse_folder(
    root: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    model: ModelLike = DEFAULT_MODEL,
    *,
    ir_dir: str | os.PathLike | None = None,
    vis_dir: str | os.PathLike | None = None,
    ext: str = ".png",
    resize: bool = False,
    bit_depth: int = 8,
    device: str = "auto",
    dtype: str = "float32",
    checkpoint_path: str | os.PathLike | None = None,
    save_maps: bool = False,
    batch_size: int = 1,
    progress: bool = True,
    tile: int | str | None = "auto",
    on_pair: Callable[[str, str | None], None] | None = None,
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
    register: bool | str = False,
) -> FolderResult:
    """Fuse every pair of a dataset folder, going on past pairs that fail.

    Args:
        root: dataset folder with modality subfolders (ir/vi, Inf/Vis, MRI/PET, ...), or None
            with ``ir_dir`` and ``vis_dir``.
        out_dir: where fused images go, as ``<pair name><ext>`` (subfolders kept).
        batch_size: pairs of equal size fused in one call.
        progress: show a progress bar on stderr.
        on_pair: called with (name, error or None) after each pair.
        overwrite: replace existing outputs; by default a pair whose output exists is skipped
            (listed in ``skipped``), which makes an interrupted run resumable.
        shard: (I, N) to fuse only the pairs ``[I::N]`` of the name-sorted list (see :mod:`ivfuse.shard`),
            so that N processes split the dataset without overlap or gaps; files without a partner
            are listed by shard 0 only.
        Other arguments as in :func:`fuse`.

    Returns:
        A :class:`FolderResult`. Raises, before any pair is fused, for problems with the folders
        (missing, no modality subfolders, no pairs, output inside an input folder, output not
        writable) and with the settings (extension, bit depth, device, batch size, model).
    """
    if not ext.startswith("."):
        ext = "." + ext
    if ext.lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"output extension '{ext}' (--ext) is not supported; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16 (--bit-depth), got {bit_depth}")
    if bit_depth == 16 and ext.lower() not in (".png", ".tif", ".tiff"):
        raise ValueError(f"16-bit output (--bit-depth 16) needs --ext .png or .tif, not '{ext}'")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size must be a whole number of at least 1, got {batch_size}")
    scan = find_pairs(root, ir_dir=ir_dir, vis_dir=vis_dir)
    if not scan.pairs:
        detail = f"{len(scan.unmatched)} image files without a partner"
        if scan.ambiguous:
            detail += (f", {len(scan.ambiguous)} name(s) with several files of different extensions "
                       f"(e.g. '{scan.ambiguous[0]}': keep one file per name)")
        raise ValueError(f"no infrared/visible pairs found in '{scan.ir_dir}' and '{scan.vis_dir}' ({detail})")
    if shard is not None and shard[1] > 1:
        from .shard import select_shard

        scan.pairs = select_shard(scan.pairs, shard)
        scan.unmatched = scan.unmatched if shard[0] == 0 else []
        scan.ambiguous = scan.ambiguous if shard[0] == 0 else []
    for src in (scan.ir_dir, scan.vis_dir):
        if is_within(out_dir, src):
            raise ValueError(f"'{out_dir}': output folder is inside the input folder '{src}'; choose another output")
    check_writable_folder(out_dir)
    dev = select_device(device)
    net = resolve_model(model, checkpoint_path)
    out_root = Path(out_dir)
    result = FolderResult(unmatched=list(scan.unmatched))
    for name in scan.ambiguous:
        result.failed.append((name, f"several files named '{name}' with different extensions; keep one"))
    todo = []
    for pp in scan.pairs:
        out = out_root / f"{pp.name}{ext}"
        if any(same_file(out, src) for src in (pp.ir, pp.vis)):
            raise ValueError(f"'{out}': output would replace the input of pair '{pp.name}'; choose another output")
        if out.exists() and not overwrite:
            result.skipped.append(out)
        else:
            todo.append(pp)

    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="fusing", unit="pair", disable=not progress, dynamic_ncols=True)
    batch: list[tuple[PairPaths, object]] = []

    def report(name: str, err: str | None) -> None:
        if err is not None:
            result.failed.append((name, err))
        if on_pair is not None:
            on_pair(name, err)
        bar.update(1)

    def flush() -> None:
        if not batch:
            return
        ir = torch.cat([p.ir for _, p in batch])
        vis = torch.cat([p.vis for _, p in batch])
        try:
            fused, maps = run_model(net, ir, vis, device=dev, dtype=dtype, return_maps=True, tile=tile)
        except Exception as exc:  # a model failure on one batch must not end the run
            for pp, _ in batch:
                report(pp.name, f"fusion failed: {exc}")
            batch.clear()
            return
        for i, (pp, pair) in enumerate(batch):
            out = out_root / f"{pp.name}{ext}"
            try:
                write_image(out, restore_color(fused[i : i + 1], pair.chroma), bit_depth=bit_depth)
                if save_maps:
                    for k, mp in _maps_paths(out, maps).items():
                        write_image(mp, maps[k][i, 0].numpy())
                result.written.append(out)
                report(pp.name, None)
            except Exception as exc:
                report(pp.name, f"cannot write '{out}': {exc}")
        batch.clear()

    try:
        for pp in todo:
            try:
                pair = load_pair(*_registered(pp.ir, pp.vis, register, pp.name), resize=resize, name=pp.name)
            except Exception as exc:
                report(pp.name, str(exc))
                continue
            if batch and (len(batch) >= batch_size or batch[0][1].size != pair.size):
                flush()
            batch.append((pp, pair))
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        bar.close()
    return result
