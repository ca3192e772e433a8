"""benchmarks/gpu_train.sh, run on the CPU with tiny settings: probe, step budget, weights and cards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_train.sh"


def dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (36, 40), dtype=np.uint8)).save(root / sub / f"p{i}.png")
    return root


def run(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "DEVICE": "cpu", "CROP": "16", "BATCH": "2", "MODELS": "fusionnet",
            "DATA": str(dataset(tmp_path / "data")), "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], env=full, capture_output=True, text=True,
                          timeout=600)


def test_fixed_steps_write_weights_cards_and_summary(tmp_path):
    proc = run(tmp_path, STEPS="2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "out"
    card = json.loads((out / "fusionnet" / "fusionnet.json").read_text())
    assert card["steps"] == 2
    assert (out / "fusionnet" / "fusionnet.safetensors").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["model"], r["steps"]) for r in summary] == [("fusionnet", 2)] and summary[0]["wall_s"] >= 0
    assert not (out / "summary.jsonl").exists()


def test_probe_sizes_the_run_to_the_budget(tmp_path):
    proc = run(tmp_path, PROBE_STEPS="3", BUDGET_S="1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "s/step in the probe" in proc.stderr
    steps = json.loads((tmp_path / "out" / "summary.json").read_text())[0]["steps"]
    assert steps == 10  # a one-second budget gets the floor of 10 steps
    assert not (tmp_path / "out" / "probe_fusionnet").exists()


def test_missing_data_is_a_clear_error(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True,
                          env={**os.environ, "DATA": str(tmp_path / "nowhere")})
    assert proc.returncode == 2 and "nowhere" in proc.stderr and "not found" in proc.stderr
