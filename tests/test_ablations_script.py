"""benchmarks/ablations.py on a tiny synthetic set: every row trained per seed, scored, tabulated, resumable."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablations.py"


def load_script():
    spec = importlib.util.spec_from_file_location("ablations_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def folder(root: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 44), dtype=np.uint8)).save(root / sub / f"p{i}.png")
    return root


def test_rows_seeds_table_and_rerun(tmp_path):
    abl = load_script()
    train, test, out = folder(tmp_path / "train", 2, 0), folder(tmp_path / "test", 2, 1), tmp_path / "out"
    argv = ["fusionnet", "--rows", "wo_roi,full", "--steps", "1", "--seeds", "0,1", "--data", str(train),
            "--test", f"syn={test}", "--out", str(out), "-q"]
    assert abl.main(argv) == 0
    table = json.loads((out / "ablations_fusionnet.json").read_text())["table"]["sets"]["syn"]
    assert set(table["rows"]) == {"wo_roi", "full"}
    assert table["rows"]["full"]["vifb"]["SSIM"]["n"] == 2  # both seeds averaged
    ranks = table["mean_rank"]
    assert all(1.0 <= r <= 2.0 for r in ranks.values()) and abs(sum(ranks.values()) - 3.0) < 1e-9
    md = (out / "ablations_fusionnet.md").read_text()
    assert "| no ROI term |" in md and "| FusionNet (full) |" in md and "mean rank" in md
    cfg = json.loads((out / "wo_roi" / "seed0" / "config.json").read_text())
    assert cfg["loss"]["kwargs"]["roi_weight"] == 0.0 and cfg["seed"] == 0
    stamp = (out / "full" / "seed1" / "scores.json").stat().st_mtime_ns
    assert abl.main(argv) == 0  # a rerun reuses the finished runs
    assert (out / "full" / "seed1" / "scores.json").stat().st_mtime_ns == stamp


def test_paper_rows_match_the_recipes():
    abl = load_script()
    from ivfuse.train import recipe_fgfusion, recipe_fusionnet, recipe_pomai

    for paper, mod in (("pomai", recipe_pomai), ("fgfusion", recipe_fgfusion), ("fusionnet", recipe_fusionnet)):
        assert set(abl.PAPERS[paper]["rows"]) == set(mod.ABLATIONS)
        ref = abl.PAPERS[paper]["paper"]
        if ref:
            assert set(ref["values"]) == set(mod.ABLATIONS)
