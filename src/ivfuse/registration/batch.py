"""Register a file pair or two folders and write the aligned pairs, transforms, masks and overlays."""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from .._files import atomic_write
from ..io import check_writable_folder, find_pairs, is_within, read_array, same_file, to_float, write_image
from .estimate import METHODS, RegistrationParams, estimate, refine_flow
from .features import as_gray
from .transform import Registration, RegistrationError

__all__ = ["RegisterResult", "register", "checkerboard"]

PathLike = Union[str, os.PathLike]


@dataclass
class RegisterResult:
    """Outcome of :func:`register`.

    Attributes:
        done: names of the pairs registered and written.
        failed: (pair name, reason) for each pair that could not be registered or written.
        skipped: names of pairs whose outputs exist (kept; pass ``overwrite=True`` to replace).
        unmatched: input files without a partner.
        rig: the one transform applied to every pair with ``fixed_rig``, else None.
        registrations: pair name -> its :class:`Registration`.
    """

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)
    rig: Registration | None = None
    registrations: dict[str, Registration] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class _Job:
    name: str
    ir: Path
    vis: Path


def checkerboard(fixed: np.ndarray, registered: np.ndarray, valid: np.ndarray, tile: int = 0) -> np.ndarray:
    """Alternate squares of the fixed image and the registered moving image (gray, (H, W) in [0, 1]).

    Outside the valid region the fixed image is shown. ``tile`` is the square side (default:
    an eighth of the shorter side).
    """
    f, m = as_gray(fixed), as_gray(registered)
    t = tile or max(8, min(f.shape) // 8)
    ys, xs = np.mgrid[0 : f.shape[0], 0 : f.shape[1]]
    take = (((ys // t) + (xs // t)) % 2 == 1) & valid
    return np.where(take, m, f)


def _jobs(ir: PathLike, vis: PathLike, result: RegisterResult) -> tuple[list[_Job], list[Path]]:
    ir_p, vis_p = Path(ir), Path(vis)
    if ir_p.is_dir() != vis_p.is_dir() and ir_p.exists() and vis_p.exists():
        raise ValueError(f"'{ir_p}' and '{vis_p}': give two image files or two folders, not one of each")
    if ir_p.is_dir():
        scan = find_pairs(None, ir_dir=ir_p, vis_dir=vis_p)
        if not scan.pairs:
            raise ValueError(f"no infrared/visible pairs found in '{ir_p}' and '{vis_p}'")
        result.unmatched = list(scan.unmatched)
        for name in scan.ambiguous:
            result.failed.append((name, f"several files named '{name}' with different extensions; keep one"))
        jobs = [_Job(pp.name, pp.ir, pp.vis) for pp in scan.pairs]
        return jobs, [scan.ir_dir, scan.vis_dir]
    for p in (ir_p, vis_p):
        if not p.is_file():
            raise FileNotFoundError(f"'{p}': image file not found")
    return [_Job(ir_p.stem, ir_p, vis_p)], [ir_p.parent, vis_p.parent]


def _targets(out: Path, job: _Job, flow: bool) -> dict[str, Path]:
    stem = Path(job.name)
    t = {
        "ir": out / "ir" / stem.with_suffix(job.ir.suffix),
        "vi": out / "vi" / stem.with_suffix(job.vis.suffix),
        "json": out / "transforms" / f"{job.name}.json",
        "mask": out / "mask" / f"{job.name}.png",
        "overlay": out / "overlay" / f"{job.name}.png",
    }
    if flow:
        t["npy"] = out / "transforms" / f"{job.name}.npy"
    return t


def register(
    ir: PathLike,
    vis: PathLike,
    output: PathLike,
    moving: str = "ir",
    method: str = "homography",
    fixed_rig: int | None = None,
    *,
    overwrite: bool = False,
    params: RegistrationParams | None = None,
    on_pair=None,
) -> RegisterResult:
    """Register an infrared/visible file pair, or every pair of two folders, and write the results.

    For each pair NAME, under ``output``: ``ir/NAME`` and ``vi/NAME`` (same file names; the moving
    one resampled onto the fixed grid, the fixed one copied unchanged), ``transforms/NAME.json``
    (:meth:`Registration.to_json`) and ``transforms/NAME.npy`` (the dense residual, (H, W, 2)
    float32, when the method has one), ``mask/NAME.png`` (valid region, white) and
    ``overlay/NAME.png`` (checkerboard of fixed and registered moving image).

    Args:
        ir, vis: two image files, or two folders (pairs matched by name with ``find_pairs``).
        output: output folder; may not lie inside an input folder.
        moving: which image is resampled: "ir" (onto the visible grid) or "vis".
        method: "homography", "flow" or "both" (see :func:`estimate`).
        fixed_rig: estimate one transform from the first N pairs (the one with the highest
            structure correlation among those that register) and apply it to every pair; for
            "flow"/"both" each pair then gets its own dense residual on top of the rig's homography.
        overwrite: replace existing outputs; otherwise a pair with any output present is skipped.
        params: estimation settings.
        on_pair: called with (name, error or None) after each pair.

    Returns:
        A :class:`RegisterResult`. A pair that cannot be registered is listed in ``failed`` with
        the reason and the run goes on; every file is written atomically and a pair whose
        writing fails leaves none of its files behind.

    Raises:
        ValueError: bad options, no pairs, output inside an input folder, or no rig transform.
        FileNotFoundError: an input is missing.
    """
    if moving not in ("ir", "vis"):
        raise ValueError(f"moving must be 'ir' or 'vis', got '{moving}'")
    if method not in METHODS:
        raise ValueError(f"unknown registration method '{method}'; use one of {', '.join(METHODS)}")
    if fixed_rig is not None and (not isinstance(fixed_rig, int) or fixed_rig < 1):
        raise ValueError(f"fixed_rig must be a whole number of at least 1 pairs, got {fixed_rig}")
    result = RegisterResult()
    jobs, folders = _jobs(ir, vis, result)
    out = Path(output)
    for src in folders:
        if is_within(out, src):
            raise ValueError(f"'{out}': output folder is inside the input folder '{src}'; choose another output")
    check_writable_folder(out)
    has_flow = method in ("flow", "both")
    todo = []
    for job in jobs:
        targets = _targets(out, job, has_flow)
        if any(same_file(t, s) for t in targets.values() for s in (job.ir, job.vis)):
            raise ValueError(f"'{out}': an output of pair '{job.name}' would replace its input")
        if not overwrite and any(t.exists() for t in targets.values()):
            result.skipped.append(job.name)
        else:
            todo.append((job, targets))

    def report(name: str, err: str | None) -> None:
        if err is not None:
            result.failed.append((name, err))
        if on_pair is not None:
            on_pair(name, err)

    if fixed_rig is not None:
        result.rig = _rig(jobs[:fixed_rig], moving, method, params)
    for job, targets in todo:
        try:
            fixed_arr, moving_arr, moving_native = _load(job, moving)
            if result.rig is None:
                reg = estimate(to_float(fixed_arr), to_float(moving_arr), method=method, name=job.name, params=params)
            else:
                reg = _apply_rig(result.rig, job, to_float(fixed_arr), to_float(moving_arr), method, params)
            _write_pair(job, targets, reg, fixed_arr, moving_arr, moving_native, moving)
        except (RegistrationError, OSError, ValueError) as exc:
            report(job.name, " ".join(str(exc).split()))
            continue
        result.done.append(job.name)
        result.registrations[job.name] = reg
        report(job.name, None)
    return result


def _load(job: _Job, moving: str) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    ir_a, vis_a = read_array(job.ir), read_array(job.vis)
    fixed, mov = (vis_a, ir_a) if moving == "ir" else (ir_a, vis_a)
    return fixed, mov, mov.dtype


def _rig(jobs: list[_Job], moving: str, method: str, params) -> Registration:
    """The best-scoring transform among ``jobs`` (homography only: a dense field is per scene)."""
    best, errors = None, []
    for job in jobs:
        try:
            f, m, _ = _load(job, moving)
            reg = estimate(to_float(f), to_float(m), method="homography" if method != "flow" else "flow",
                           name=job.name, params=params)
        except (RegistrationError, OSError, ValueError) as exc:
            errors.append(f"{job.name}: {exc}")
            continue
        if best is None or reg.score > best.score:
            best = reg
    if best is None:
        raise ValueError(f"fixed rig: none of the {len(jobs)} pairs registered ({'; '.join(errors[:3])})")
    best.flow = None
    best.extra["rig_from"] = best.name
    best.extra["rig_pairs"] = len(jobs)
    return best


def _apply_rig(rig: Registration, job: _Job, fixed: np.ndarray, moving: np.ndarray, method: str,
               params) -> Registration:
    if fixed.shape[:2] != rig.fixed_shape or moving.shape[:2] != rig.moving_shape:
        raise RegistrationError(f"'{job.name}': image sizes {moving.shape[1]}x{moving.shape[0]} -> "
                                f"{fixed.shape[1]}x{fixed.shape[0]} differ from the rig's "
                                f"{rig.moving_shape[1]}x{rig.moving_shape[0]} -> "
                                f"{rig.fixed_shape[1]}x{rig.fixed_shape[0]}")
    reg = Registration.from_json(rig.to_json())
    reg.name, reg.method = job.name, method
    if method in ("flow", "both"):
        reg.flow = refine_flow(fixed, moving, reg, params)
    return reg


def _write_pair(job: _Job, targets: dict[str, Path], reg: Registration, fixed_arr: np.ndarray,
                moving_arr: np.ndarray, moving_dtype, moving: str) -> None:
    """Compute everything for the pair, then write its files; on any failure remove those written."""
    registered, valid = reg.apply(to_float(moving_arr))
    depth = 16 if moving_dtype == np.uint16 else 8
    mov_key, fix_key = ("ir", "vi") if moving == "ir" else ("vi", "ir")
    fixed_src = job.vis if moving == "ir" else job.ir
    overlay = checkerboard(to_float(fixed_arr), registered, valid)
    meta = json.dumps(reg.to_json(), indent=2) + "\n"
    written: list[Path] = []
    try:
        if depth == 16 and targets[mov_key].suffix.lower() not in (".png", ".tif", ".tiff"):
            depth = 8
        written.append(write_image(targets[mov_key], registered, bit_depth=depth))
        targets[fix_key].parent.mkdir(parents=True, exist_ok=True)
        with open(fixed_src, "rb") as fh:
            written.append(atomic_write(targets[fix_key], lambda dst: shutil.copyfileobj(fh, dst)))
        written.append(write_image(targets["mask"], valid.astype(np.uint8) * 255))
        written.append(write_image(targets["overlay"], overlay))
        if "npy" in targets:
            buf = io.BytesIO()
            np.save(buf, reg.flow if reg.flow is not None else np.zeros((*reg.fixed_shape, 2), np.float32))
            written.append(atomic_write(targets["npy"], buf.getvalue()))
        written.append(atomic_write(targets["json"], meta))
    except BaseException:
        for p in written:
            try:
                p.unlink()
            except OSError:
                pass
        raise


def registered_for_fusion(ir, vis, method: str = "homography", name: str = "",
                          params: RegistrationParams | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The infrared image moved onto the visible grid, ready for fusion.

    Args:
        ir, vis: paths or float arrays in [0, 1].
        method: as in :func:`estimate`.

    Returns:
        (ir_registered, vis, valid): the infrared (H, W) float32 on the visible grid, with the
        visible luminance where the infrared image does not reach (so the fused image there shows
        the visible scene), the visible image as read, and the (H, W) bool valid region.
    """
    ir_a = to_float(read_array(ir)) if isinstance(ir, (str, os.PathLike)) else np.asarray(ir, np.float32)
    vis_a = to_float(read_array(vis)) if isinstance(vis, (str, os.PathLike)) else np.asarray(vis, np.float32)
    label = name or (Path(vis).stem if isinstance(vis, (str, os.PathLike)) else "")
    reg = estimate(vis_a, ir_a, method=method, name=label, params=params)
    moved, valid = reg.apply(as_gray(ir_a))
    return np.where(valid, moved, as_gray(vis_a)).astype(np.float32), vis_a, valid
