"""Synthetic training data and small configurations shared by the engine's tests (and its DDP workers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ivfuse.io import write_image
from ivfuse.train.config import OptimizerConfig, ScheduleConfig, Stage
from ivfuse.train.recipes import make_config


def write_pairs(root: Path, n: int = 6, h: int = 40, w: int = 48, seed: int = 0) -> Path:
    """Infrared with warm blobs on a cool background, visible with texture and edges."""
    rng = np.random.default_rng(seed)
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        ir = 0.2 + 0.05 * rng.standard_normal((h, w))
        for _ in range(2):
            cy, cx = rng.integers(5, h - 5), rng.integers(5, w - 5)
            ir[(yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(9, 30)] = 0.85
        vis = (0.5 + 0.3 * np.sin(xx / rng.uniform(2, 5)) * np.cos(yy / rng.uniform(2, 5))
               + 0.05 * rng.standard_normal((h, w)))
        vis[:, : w // 3] *= 0.4
        write_image(root / "ir" / f"{i:03d}.png", np.clip(ir, 0, 1))
        write_image(root / "vi" / f"{i:03d}.png", np.clip(np.stack([vis, vis * 0.9, vis * 0.8], -1), 0, 1))
    return root


def small_config(data_dir, steps: int = 6, lr: float = 5e-3, **overrides):
    """tiny_cnn, 24 px crops, batch 2, Adam with cosine decay; no checkpoints unless asked."""
    cfg = make_config("tiny_cnn", "cpu")
    cfg.data.path = str(data_dir)
    cfg.data.crop = 24
    cfg.data.batch_size = 2
    cfg.threads = 1  # tiny tensors: one thread avoids contention on a busy machine
    cfg.stages = [Stage("main", steps, optimizer=OptimizerConfig("adam", lr=lr), schedule=ScheduleConfig("cosine"))]
    cfg.checkpoint_every = 0
    cfg.log_every = 1
    cfg.val_every = 0
    cfg.model_kwargs = {"width": 8, "depth": 1}
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg
