"""The files of a run folder other than checkpoints: config.json, run.json, log.jsonl, weights and card.

See :mod:`ivfuse.train.loop` for the folder layout.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

from torch import nn

from .config import TrainConfig, config_to_dict

__all__ = ["JsonlLog", "export_weights", "weight_card", "write_run_files"]


class JsonlLog:
    """Append-only JSONL log on rank 0; on resume, rows after the resumed step are dropped.

    Args:
        path: the log file (``RUN_DIR/log.jsonl``).
        enabled: write at all (rank 0 only).
        resume_step: the step a resumed run continues from; None for a fresh run (an old log is removed).
    """

    def __init__(self, path: Path, enabled: bool, resume_step: int | None) -> None:
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        if resume_step is not None and path.is_file():
            keep = []
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                if int(row.get("step", 0)) <= resume_step:
                    keep.append(line)
            path.write_text("".join(k + "\n" for k in keep))
        elif resume_step is None and path.exists():
            path.unlink()

    def write(self, row: dict) -> None:
        """Append one row (a JSON object on its own line)."""
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(row) + "\n")


def write_run_files(run_dir: Path, cfg: TrainConfig, old_cfg: dict | None, run_info: dict,
                    say: Callable[[str], None]) -> None:
    """Create ``run_dir`` and write ``config.json`` (the resolved configuration) and ``run.json``.

    Args:
        run_dir: the run folder.
        cfg: the resolved configuration.
        old_cfg: the ``config.json`` a resumed run started with, or None; a difference is reported.
        run_info: what ``run.json`` holds (environment, dataset summary, stage plan).
        say: prints a message (rank 0).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    new_cfg = config_to_dict(cfg)
    if old_cfg is not None and old_cfg != new_cfg:
        # A setting the older config.json lacks (added to TrainConfig since) reads as its default.
        defaults = config_to_dict(TrainConfig())
        changed = sorted(k for k in set(old_cfg) | set(new_cfg)
                         if old_cfg.get(k, defaults.get(k)) != new_cfg.get(k))
        if changed:
            say(f"warning: the configuration differs from the one the run started with ({', '.join(changed)})")
    (run_dir / "config.json").write_text(json.dumps(new_cfg, indent=2) + "\n")
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2) + "\n")


def weight_card(cfg: TrainConfig, weights: Path, steps: int, model: nn.Module, val: dict, seconds: float,
                init_from: str = ""):
    """The :class:`~ivfuse.models.WeightCard` of a run's final weights (provenance, steps, metrics, size)."""
    from .._files import sha256_file
    from ..models import WeightCard
    from ..models.registry import count_parameters

    data = cfg.data.path or f"{cfg.data.ir_dir} + {cfg.data.vis_dir}"
    if cfg.data.more:
        data = " + ".join([str(data)] + [str(m) for m in cfg.data.more])
    notes = (
        f"trained with ivfuse train, preset '{cfg.preset}', seed {cfg.seed}, {len(cfg.stages)} stage(s): "
        + ", ".join(f"{s.name} ({s.length} {s.unit})" for s in cfg.stages)
        + f"; {seconds / 60:.1f} min."
        + (f" Initialised from {init_from}, then fine-tuned." if init_from else "")
        + (f" {cfg.description.rstrip().rstrip('.')}." if cfg.description.strip() else "")
        + (f" Loss '{cfg.loss.name}' as configured: "
           + ", ".join(f"{k}={v}" for k, v in sorted(cfg.loss.kwargs.items())) + "."
           if cfg.loss.kwargs else "")
    )
    return WeightCard(
        file=weights.name,
        sha256=sha256_file(weights),
        training_data=str(data),
        steps=int(steps),
        metrics={k: round(float(v), 6) for k, v in val.items()},
        params=count_parameters(model),
        notes=notes,
    )


def export_weights(run_dir: Path, cfg: TrainConfig, model: nn.Module, steps: int, val: dict, seconds: float,
                   init_from: str = "") -> tuple[Path, Path]:
    """Write ``<model>.safetensors`` (the model in eval mode) and its card ``<model>.json``.

    Returns:
        (weights file, card file).
    """
    from ..models import save_weights

    model.eval()
    weights = save_weights(model, run_dir / f"{cfg.model}.safetensors",
                           metadata={"model": cfg.model, "steps": str(steps), "preset": cfg.preset,
                                     **({"init_from": init_from} if init_from else {}),
                                     **({"model_kwargs": json.dumps(dict(cfg.model_kwargs), sort_keys=True)}
                                        if cfg.model_kwargs else {})})
    card = weight_card(cfg, weights, steps, model, val, seconds, init_from)
    if cfg.model_kwargs:  # create_model(name, checkpoint_path=...) builds the variant from the file's metadata
        card = dataclasses.replace(card, model_kwargs=dict(cfg.model_kwargs))
    card_path = run_dir / f"{cfg.model}.json"
    card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    return weights, card_path
