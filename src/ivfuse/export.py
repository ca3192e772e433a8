"""ONNX export of the fusion models and an onnxruntime backend that is called like them.

The graph takes ``ir`` and ``vis``, float32 (B, 1, H, W) in [0, 1], and returns ``fused``
(B, 1, H, W) in [0, 1]; B, H and W are dynamic axes. Padding to the model's multiple is done
**outside** the graph: H and W must be multiples of ``pad_multiple`` (stored in the model's
metadata and in the JSON card beside the file), which :func:`ivfuse.infer.run_model` ensures by
reflection padding before it calls :class:`OnnxModel`, exactly as for the PyTorch model.
The exporter is PyTorch's TorchScript-based one (``dynamo=False``): it needs only ``onnx`` and
works offline; the ``dynamo=True`` path needs ``onnxscript`` and cannot trace the models'
shape-dependent padding loops symbolically.

Needs the ``onnx`` extra: ``pip install 'ivfuse[onnx]'``.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._extras import require
from ._files import atomic_write, sha256_file

__all__ = ["DEFAULT_OPSET", "NOT_EXPORTABLE", "ExportError", "OnnxModel", "export_onnx", "load_model", "onnx_bytes"]

#: ONNX opset written by default (onnxruntime 1.17 and later run it).
DEFAULT_OPSET = 17

_INPUTS, _OUTPUT = ("ir", "vis"), "fused"


#: Why the models that have no ONNX form with dynamic height and width cannot be exported (by class name).
NOT_EXPORTABLE = {
    "PoMAI": "its non-local attention (NGMM) draws hash rotations whose count depends on H*W at run time, "
             "which a graph with dynamic height and width cannot hold",
    "FGFusion": "its context pooling (adaptive_avg_pool2d to min(pool, H) x min(pool, W)) has an output size "
                "that depends on the input size, which the ONNX exporter cannot express",
    "LaplacianPyramidFusion": "its blur kernel is expanded to a size read from the input at run time, "
                              "and ONNX convolutions need a kernel of known shape",
}


class ExportError(ValueError):
    """A model cannot be exported to ONNX (the message says which and why)."""


class _Graph(nn.Module):
    """The exported function: ``(ir, vis) -> fused``, without maps."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        out = self.model(ir, vis)
        return out[0] if isinstance(out, tuple) else out


def _resolve(model, checkpoint_path=None) -> tuple[nn.Module, str]:
    from .api import DEFAULT_MODEL, resolve_model

    model = DEFAULT_MODEL if model is None else model
    name = model if isinstance(model, str) else type(model).__name__
    return resolve_model(model, checkpoint_path), name


def onnx_bytes(model: str | nn.Module | None = None, *, opset: int = DEFAULT_OPSET,
               checkpoint_path: str | os.PathLike | None = None, name: str | None = None) -> tuple[bytes, dict]:
    """Export a model to an in-memory ONNX file.

    Args:
        model: registry name (with its shipped weights), or an instance; default the default model.
        opset: ONNX opset version.
        checkpoint_path: safetensors weights instead of the shipped ones.
        name: the model's name in the metadata and messages (default: the registry name or class name).

    Returns:
        (the serialized ONNX model, its card: model, opset, inputs, dynamic axes, pad multiple, versions).

    Raises:
        ExportError: the model has no ONNX form (classical methods that run outside PyTorch, or whose
            operators have no ONNX counterpart); the message names the model and the cause.
        MissingExtraError: ``onnx`` is not installed.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    net, default_name = _resolve(model, checkpoint_path)
    name = name or default_name
    net = net.eval()
    multiple = int(getattr(net, "pad_multiple", 1) or 1)
    side = max(32, 2 * multiple)  # the blur's border choice is made in the graph (filters.safe_pad_indexed)
    sample = (torch.rand(1, 1, side, side + multiple), torch.rand(1, 1, side, side + multiple))
    axes = {"ir": {0: "batch", 2: "height", 3: "width"}, "vis": {0: "batch", 2: "height", 3: "width"},
            "fused": {0: "batch", 2: "height", 3: "width"}}
    if type(net).__name__ in NOT_EXPORTABLE:  # known beforehand: no slow failing trace
        raise ExportError(f"model '{name}' cannot be exported to ONNX: {NOT_EXPORTABLE[type(net).__name__]}")
    buf = io.BytesIO()
    log_was = torch._C._jit_is_onnx_log_enabled()
    torch._C._jit_set_onnx_log_enabled(False)  # a failed export would print its whole graph on stderr
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Graph(net), sample, buf, input_names=list(_INPUTS), output_names=[_OUTPUT],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
    except Exception as exc:
        cause = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ExportError(f"model '{name}' cannot be exported to ONNX: {cause}") from None
    finally:
        torch._C._jit_set_onnx_log_enabled(log_was)
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in (("ivfuse_model", name), ("pad_multiple", str(multiple))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    card = {
        "model": name, "opset": opset, "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "inputs": {k: "float32 (batch, 1, height, width) in [0, 1]" for k in _INPUTS},
        "outputs": {_OUTPUT: "float32 (batch, 1, height, width) in [0, 1]"},
        "dynamic_axes": ["batch", "height", "width"], "pad_multiple": multiple,
        "padding": f"outside the graph: height and width must be multiples of {multiple} "
                   "(ivfuse.infer.run_model pads by reflection and crops back)",
        "torch": torch.__version__, "onnx": onnx.__version__,
    }
    return proto.SerializeToString(), card


def export_onnx(model: str | nn.Module | None, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                checkpoint_path: str | os.PathLike | None = None, overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``path`` (.onnx) and its card ``path`` with ``.json`` (opset, axes, padding, sha256), both atomically.

    Raises:
        ValueError: the extension is not .onnx; ExportError as in :func:`onnx_bytes`.
        FileExistsError: a file exists and ``overwrite`` is false.
    """
    from .io import check_writable_folder

    out = Path(path)
    if out.suffix.lower() != ".onnx":
        raise ValueError(f"'{out}': the output must end in .onnx")
    card_path = out.with_suffix(".json")
    if not overwrite:
        for p in (out, card_path):
            if p.exists():
                raise FileExistsError(f"'{p}': exists and was not replaced (pass --overwrite)")
    check_writable_folder(out.parent)
    data, card = onnx_bytes(model, opset=opset, checkpoint_path=checkpoint_path)
    atomic_write(out, data)
    card["file"], card["sha256"] = out.name, sha256_file(out)
    atomic_write(card_path, json.dumps(card, indent=2) + "\n")
    return out, card_path


class OnnxModel(nn.Module):
    """An onnxruntime session called like a fusion model: ``m(ir, vis, return_maps=False)``.

    Args:
        source: an ``.onnx`` file, or the bytes of one.
        threads: intra-op threads (default: ``torch.get_num_threads()``, which ``--threads`` sets).
        memory_per_pixel: passed on to the automatic tiling of :func:`ivfuse.infer.run_model`.

    Attributes:
        pad_multiple: from the model's metadata (1 if absent).

    Inputs (B, 1, H, W) float in [0, 1] with H, W multiples of ``pad_multiple``; returns the fused
    (B, 1, H, W) on the inputs' device, and an empty dict of maps with ``return_maps=True``.
    """

    def __init__(self, source: str | os.PathLike | bytes, threads: int | None = None,
                 memory_per_pixel: int | None = None) -> None:
        super().__init__()
        ort = require("onnxruntime", "onnx", "the onnxruntime backend")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: on shared cores spinning takes the time that
        # decoding, encoding and other processes need (0.33 s against 0.41 s a 640x480 frame, 1 thread, busy machine).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._source, self._memory_per_pixel = source, memory_per_pixel
        if isinstance(source, (bytes, bytearray)):
            what, payload = "<exported model>", bytes(source)
        else:
            p = Path(source)
            if not p.is_file():
                raise FileNotFoundError(2, "No such file or directory", str(p))
            what, payload = str(p), str(p)
        try:
            self.session = ort.InferenceSession(payload, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ValueError(f"'{what}': cannot load as an ONNX model ({' '.join(str(exc).split())[:200]})") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != list(_INPUTS):
            raise ValueError(f"'{what}': expected inputs {list(_INPUTS)}, the model has {names}")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.pad_multiple = int(meta.get("pad_multiple", 1))
        self.source_model = meta.get("ivfuse_model", what)
        if memory_per_pixel is not None:
            self.memory_per_pixel = memory_per_pixel

    def clone(self, threads: int | None = None) -> "OnnxModel":
        """A new session of the same model (sessions can run concurrently), with ``threads`` intra-op threads."""
        return OnnxModel(self._source, threads=threads, memory_per_pixel=self._memory_per_pixel)

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, return_maps: bool = False):
        from .models.base import check_inputs

        check_inputs(ir, vis)
        h, w = ir.shape[-2:]
        if h % self.pad_multiple or w % self.pad_multiple:
            raise ValueError(f"ONNX model '{self.source_model}': height and width must be multiples of "
                             f"{self.pad_multiple}, got {h}x{w} (run it through ivfuse.infer.run_model)")
        feed = {k: np.ascontiguousarray(t.detach().float().cpu().numpy()) for k, t in zip(_INPUTS, (ir, vis))}
        fused = torch.from_numpy(self.session.run([_OUTPUT], feed)[0]).to(ir.device)
        return (fused, {}) if return_maps else fused


def load_model(model: str | nn.Module | None = None, *, backend: str = "torch",
               checkpoint_path: str | os.PathLike | None = None, opset: int = DEFAULT_OPSET) -> nn.Module:
    """The model a fusing command runs: the PyTorch model, or its onnxruntime counterpart.

    Args:
        model: registry name, model instance, or (onnxruntime backend) an ``.onnx`` file; None: the default model.
        backend: ``"torch"``, ``"onnxruntime"`` (a registry name or instance is exported in memory: no file,
            nothing cached) or ``"auto"`` (onnxruntime for an ``.onnx`` file, else torch: on the CPU PyTorch
            is as fast or faster for every model that exports, docs/export.md).

    Raises:
        ValueError: unknown backend, an ``.onnx`` file with the torch backend; ExportError, MissingExtraError.
    """
    if backend not in ("torch", "onnxruntime", "auto"):
        raise ValueError(f"--backend must be 'torch', 'onnxruntime' or 'auto', got '{backend}'")
    if isinstance(model, OnnxModel):  # already an onnxruntime session
        return model
    is_file = isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx")
    if backend == "auto":
        return OnnxModel(model) if is_file else _resolve(model, checkpoint_path)[0]
    if backend == "torch":
        if is_file:
            raise ValueError(f"--model '{model}': an .onnx file needs --backend onnxruntime")
        return _resolve(model, checkpoint_path)[0]
    if is_file:
        return OnnxModel(model)
    net, name = _resolve(model, checkpoint_path)
    data, _card = onnx_bytes(net, opset=opset, name=name)
    return OnnxModel(data, memory_per_pixel=getattr(net, "memory_per_pixel", None))
