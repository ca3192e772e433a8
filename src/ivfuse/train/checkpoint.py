"""Checkpoints that load without unpickling anything.

A checkpoint is a folder ``RUN_DIR/checkpoints/step_XXXXXXXX/`` with

* ``model.safetensors``: the model's state dict;
* ``optimizer.safetensors``: the optimizer's tensors, keyed ``state.<param index>.<name>``;
* ``rng.safetensors``: torch CPU (and CUDA) generator states as uint8 tensors;
* ``state.json``: step, stage, the optimizer's non-tensor state and param groups, the AMP grad
  scaler, Python's and NumPy's RNG states, and anything the loop adds.

The folder is written under a temporary name and renamed into place, then ``RUN_DIR/checkpoints/
latest`` is replaced atomically: a run killed at any moment leaves complete checkpoints only.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._files import atomic_write

__all__ = [
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint_dir",
    "optimizer_state_from_flat",
    "optimizer_state_to_flat",
    "rng_state_to_flat",
    "save_checkpoint",
    "set_rng_state_from_flat",
]

_FORMAT = 1


def _json_safe(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, torch.Tensor):
        return x.item()
    return x


# --------------------------------------------------------------------------------------------
# Optimizer and RNG state <-> tensors + JSON
# --------------------------------------------------------------------------------------------


def optimizer_state_to_flat(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into safetensors-ready tensors and a JSON-ready dict."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{pid}.{k}"] = v.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = _json_safe(v)
    meta = {"param_groups": _json_safe(sd["param_groups"]), "scalars": scalars,
            "state_ids": [str(p) for p in sd["state"]]}
    return tensors, meta


def optimizer_state_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`optimizer_state_to_flat` (lists in param groups become tuples, e.g. Adam's betas)."""
    state: dict[int, dict[str, Any]] = {int(p): {} for p in meta.get("state_ids", [])}
    for key, v in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = v
    for pid, d in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(d)
    groups = []
    for g in meta["param_groups"]:
        groups.append({k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()})
    return {"state": state, "param_groups": groups}


def rng_state_to_flat() -> tuple[dict[str, torch.Tensor], dict]:
    """Torch (CPU, CUDA), NumPy and Python RNG states as uint8 tensors and JSON."""
    tensors = {"torch": torch.get_rng_state().clone()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s.clone()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py = random.getstate()
    meta = {
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    return tensors, meta


def set_rng_state_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore the RNG states saved by :func:`rng_state_to_flat`."""
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    n = meta.get("numpy")
    if n:
        np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = meta.get("python")
    if p:
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# --------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------


def _ckpt_root(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    root = _ckpt_root(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint (``checkpoints/latest``, else the highest step), or None."""
    root = _ckpt_root(run_dir)
    latest = root / "latest"
    if latest.is_file():
        p = root / latest.read_text().strip()
        if (p / "state.json").is_file():
            return p
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def _state_dict_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(
    run_dir: str | os.PathLike,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    scaler: Any = None,
    keep: int = 2,
    pinned: bool = False,
) -> Path:
    """Write a checkpoint folder atomically and prune old ones.

    Args:
        run_dir: the run folder.
        step: global step (number of optimizer steps done).
        model: the bare model (not the DDP wrapper).
        optimizer: its state is saved when given.
        state: JSON-serialisable loop state (stage index, ...).
        scaler: an AMP ``GradScaler`` whose state is saved when given.
        keep: how many unpinned checkpoints to keep (older unpinned ones are deleted).
        pinned: never delete this one (stage ends).

    Returns:
        The checkpoint folder.
    """
    from safetensors.torch import save_file

    root = _ckpt_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        save_file(_state_dict_tensors(model), str(tmp / "model.safetensors"))
        meta: dict[str, Any] = {"format": _FORMAT, "step": int(step), "pinned": bool(pinned), **_json_safe(state)}
        if optimizer is not None:
            ot, om = optimizer_state_to_flat(optimizer.state_dict())
            save_file(ot, str(tmp / "optimizer.safetensors"))
            meta["optimizer"] = om
        rt, rm = rng_state_to_flat()
        save_file(rt, str(tmp / "rng.safetensors"))
        meta["rng"] = rm
        if scaler is not None:
            meta["scaler"] = _json_safe(scaler.state_dict())
        (tmp / "state.json").write_text(json.dumps(meta))
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write(root / "latest", name + "\n")
    if keep > 0:
        unpinned = [p for p in list_checkpoints(run_dir) if p != final and not _is_pinned(p)]
        for old in unpinned[: max(0, len(unpinned) - (keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _is_pinned(path: Path) -> bool:
    try:
        return bool(json.loads((path / "state.json").read_text()).get("pinned"))
    except (OSError, json.JSONDecodeError):
        return False


def load_checkpoint_dir(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint folder.

    Returns:
        ``{"state": dict, "model": state dict, "optimizer": state dict or None,
        "rng": (tensors, meta)}``. Nothing is unpickled.

    Raises:
        ValueError: a file of the folder is unreadable (the message names it), or the format is
            unknown.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)

    def read(name: str):
        f = p / name
        try:
            return json.loads(f.read_text()) if name.endswith(".json") else load_file(str(f))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"'{f}' is unreadable ({reason})") from exc

    meta = read("state.json")
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(
            f"'{p}': unsupported checkpoint format {meta.get('format') if isinstance(meta, dict) else meta}"
        )
    out: dict[str, Any] = {"state": meta, "model": read("model.safetensors"), "optimizer": None}
    if "optimizer" in meta and (p / "optimizer.safetensors").is_file():
        out["optimizer"] = optimizer_state_from_flat(read("optimizer.safetensors"), meta["optimizer"])
    out["rng"] = (read("rng.safetensors"), meta.get("rng", {})) if (p / "rng.safetensors").is_file() else None
    return out
