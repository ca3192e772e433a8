"""The declarative metric table: entries, signatures of the functional forms, and a torch-free import."""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ivfuse.metrics as M
from ivfuse.metrics import CONVENTIONS, METRICS, evaluate, list_metrics
from ivfuse.metrics.registry import INPUTS, resolve_metric

CONVENTION_NAMES = ["vifb", "cddfuse", "tang"]
SRC = Path(__file__).resolve().parents[2] / "src"

# The reference tables as the three evaluators print them (frozen here; the table derives them).
REFERENCE_TABLES = {
    "vifb": ("EN", "SD", "SF", "AG", "MI", "Qabf", "SSIM", "PSNR", "RMSE", "CE", "EI", "Qcb", "Qcv"),
    "cddfuse": ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM", "CC", "SCD", "PSNR", "MSE"),
    "tang": ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM", "CC", "SCD", "PSNR", "MSE", "Nabf"),
}


def test_convention_tables_come_from_the_entries():
    for name, conv in CONVENTIONS.items():
        assert conv.name == name
        assert tuple(list_metrics(name)) == REFERENCE_TABLES[name]
        assert tuple(list_metrics(name)) == tuple(n for n, m in METRICS.items() if name in m.conventions)


def test_entries_are_complete():
    for name, info in METRICS.items():
        assert info.name == name
        assert info.inputs[0] == "fused", name
        assert set(info.inputs) <= set(INPUTS), name
        assert list(info.inputs) == [x for x in INPUTS if x in info.inputs], name  # argument order
        assert info.needs_roi == (name == "ROI-SSIM")
        assert set(info.conventions) <= set(CONVENTIONS), name
        assert resolve_metric(name) == name and resolve_metric(name.lower()) == name
        for alias in info.aliases:
            assert resolve_metric(alias) == name
    assert {n for n, m in METRICS.items() if m.windowed} == {"SSIM", "ROI-SSIM"}


@pytest.mark.parametrize("name", list(METRICS))
def test_functional_form_takes_its_inputs_fused_first_then_by_keyword(name):
    info = METRICS[name]
    params = inspect.signature(getattr(M, info.function)).parameters
    positional = [p for p, v in params.items() if v.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    keyword = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    assert positional == ["fused"], name
    assert [p for p in keyword if p != "convention"] == list(info.inputs[1:]), name


def test_pair_forms_take_fused_first():
    for fn in (M.mutual_information_pair, M.ssim_map, M.vifp):
        params = inspect.signature(fn).parameters
        assert list(params)[:2] == ["fused", "source"]
        assert params["source"].kind is inspect.Parameter.KEYWORD_ONLY


def test_the_old_positional_source_order_is_refused(triple):
    fused, ir, vis = triple
    with pytest.raises(TypeError):
        M.qabf(vis, ir, fused)
    with pytest.raises(TypeError):
        M.entropy(fused, "tang")  # the convention is keyword-only as well
    with pytest.raises(TypeError):
        M.vifp(vis, fused)


def _call(info, fused, ir, vis, convention, roi):
    fn = getattr(M, info.function)
    given = {"ir": ir.astype(np.float64), "vis": vis.astype(np.float64), "roi": roi}
    kwargs = {k: given[k] for k in info.inputs[1:]}
    if "convention" in inspect.signature(fn).parameters:
        kwargs["convention"] = convention
    return fn(fused.astype(np.float64), **kwargs)


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_functional_forms_equal_evaluate_exactly(triple, convention):
    """On gray 8-bit images every convention scores the pixels as given: the two paths agree bit for bit."""
    fused, ir, vis = triple
    roi = [(8, 6, 50, 40)]
    scores = evaluate(fused, ir, vis, metrics=list_metrics(), convention=convention, roi=roi)
    for name, info in METRICS.items():
        direct = _call(info, fused, ir, vis, convention, roi)
        assert direct == scores[name] or (math.isnan(direct) and math.isnan(scores[name])), (name, convention)


def test_swapping_fused_and_visible_changes_the_scores(triple):
    """The sources are named, so a swapped call is visible: fused-vs-source metrics change."""
    fused, ir, vis = (x.astype(np.float64) for x in triple)
    for fn in (M.qabf, M.ssim, M.mutual_information, M.vif, M.psnr):
        assert fn(fused, ir=ir, vis=vis) != fn(vis, ir=ir, vis=fused), fn.__name__


_NO_TORCH = r"""
import importlib.abc, json, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
        return None

sys.meta_path.insert(0, BlockTorch())
import numpy as np
import ivfuse
import ivfuse.metrics

rng = np.random.default_rng(5)
ir = rng.integers(0, 256, size=(40, 56)).astype(np.uint8)
vis = rng.integers(0, 256, size=(40, 56, 3)).astype(np.uint8)
fused = ((ir[..., None].astype(int) + vis) // 2).astype(np.uint8)
out = {c: ivfuse.metrics.evaluate(fused, ir, vis, convention=c) for c in ("vifb", "cddfuse", "tang")}
out["top-level"] = ivfuse.evaluate(fused, ir, vis, metrics=["EN", "Qabf"])
try:
    ivfuse.fuse
    out["fuse"] = "imported"
except ImportError as exc:
    out["fuse"] = str(exc)
out["torch_loaded"] = any(m == "torch" or m.startswith("torch.") for m in sys.modules)
print(json.dumps(out))
"""


def test_metrics_import_and_score_without_torch():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch_loaded"] is False
    assert "torch is blocked" in out["fuse"]  # the torch parts of ivfuse still need torch, loudly

    # The same numbers as in this process (where torch is importable).
    rng = np.random.default_rng(5)
    ir = rng.integers(0, 256, size=(40, 56)).astype(np.uint8)
    vis = rng.integers(0, 256, size=(40, 56, 3)).astype(np.uint8)
    fused = ((ir[..., None].astype(int) + vis) // 2).astype(np.uint8)
    for convention in CONVENTION_NAMES:
        here = evaluate(fused, ir, vis, convention=convention)
        assert list(out[convention]) == list_metrics(convention)
        assert out[convention] == pytest.approx(here, rel=0, abs=0, nan_ok=True), convention
    assert out["top-level"] == pytest.approx(evaluate(fused, ir, vis, metrics=["EN", "Qabf"]), rel=0, abs=0)
