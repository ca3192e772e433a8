"""What the downstream tasks share around their trainings: the output folder check, the extra check, resumable runs."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from .._files import atomic_write
from .inputs import InputSpec, model_identity

__all__ = ["TaskResult", "check_output", "finished_run", "kept_run", "needs_module", "run_key", "save_run",
           "torch_device", "write_outputs"]


@dataclass
class TaskResult:
    """Every run of a downstream comparison and the table over the seeds.

    Attributes:
        runs: one dict per (input, seed) with ``input``, ``seed``, a ``{class or mean: value in [0, 1]}`` dict per
            metric of the task, ``cpu_s``, ``wall_s``.
        table: from :func:`ivfuse.downstream.report.aggregate`.
        notes: images left out and why; a missing chart.
        left_out: the notes about images left out (none: every labelled pair was used).
        files: the files written.
    """

    runs: list[dict] = field(default_factory=list)
    table: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def check_output(out: str | os.PathLike, train: str | os.PathLike, test: str | os.PathLike) -> Path:
    """The output folder, checked: writable, and not inside either split (inputs are never written over).

    Raises:
        ValueError / OSError: the folder lies inside an input folder or cannot be written.
    """
    from ..io import check_writable_folder, is_within

    root = Path(out)
    for src in (train, test):
        if is_within(root, src):
            raise ValueError(f"'{root}': output folder is inside the input folder '{src}'; choose another")
    check_writable_folder(root)
    return root


def torch_device(name: str) -> str:
    """``auto``/``cpu``/``cuda``/``cuda:N`` -> a torch device string; CUDA must be there when asked for."""
    import torch

    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available")
        return f"cuda:{name.partition(':')[2] or '0'}"
    raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got '{name}'")


def needs_module(module: str, extra: str, command: str) -> Callable[[], None]:
    """A check to run once the labels are read, before minutes of fusing: is ``module`` importable?

    The check raises :class:`ivfuse._extras.MissingExtraError` naming ``pip install 'ivfuse[extra]'``.
    """

    def check() -> None:
        import importlib.util

        if importlib.util.find_spec(module) is None:
            from .._extras import MissingExtraError

            raise MissingExtraError(f"{command} needs the '{module}' package: pip install 'ivfuse[{extra}]'")

    return check


def run_key(spec: InputSpec, seed: int, settings, counts: dict) -> dict:
    """What a finished run must match to be kept by ``--resume``: the input (for a model fused on the fly, also
    its weights), the seed, the settings (threads and device aside) and the image counts."""
    key = {"input": asdict(spec), "seed": seed, "settings": {k: v for k, v in asdict(settings).items()
                                                             if k not in ("threads", "device")}, "images": counts}
    if spec.kind == "model":
        key["weights"] = model_identity(spec.target)
    return key


def finished_run(done: Path, key: dict) -> dict | None:
    """The result a previous run saved in ``done`` under the same ``key``, else None."""
    if not done.is_file():
        return None
    old = json.loads(done.read_text())
    return old["result"] if old.get("key") == key else None


def kept_run(done: Path, key: dict, resume: bool, say: Callable[[str], None], label: str) -> dict | None:
    """With ``resume``, the result of a finished run with the same ``key`` (announced with ``say``), else None."""
    old = finished_run(done, key) if resume else None
    if old is not None:
        say(f"{label}: kept from {done}")
    return old


def write_outputs(result: TaskResult, root: Path, stem: str, notes: list[str], extra: dict,
                  metrics: Mapping[str, str], caption: str, chart_metric: str) -> None:
    """Write ``<stem>.{md,csv,json,tex}`` and ``<stem>_per_class.png`` (or note that matplotlib is missing)."""
    from .report import write_chart, write_tables

    result.files = write_tables(result.table, result.runs, root, stem, notes, extra, metrics, caption)
    chart = root / f"{stem}_per_class.png"
    note = write_chart(result.table, chart, chart_metric, metrics)
    if note:
        result.notes.append(note)
    else:
        result.files.append(chart)


def save_run(done: Path, key: dict, result: dict) -> None:
    """Save a finished run's result (atomically) for ``--resume``."""
    atomic_write(done, json.dumps({"key": key, "result": result}, indent=2) + "\n")
