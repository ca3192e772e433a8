"""benchmarks/seed_rows.py: our values beside the seeds' published rows, counting the values met."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "seed_rows.py"


def load():
    spec = importlib.util.spec_from_file_location("seed_rows", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def table(means: dict) -> dict:
    metrics = sorted({m for v in means.values() for m in v})
    return {"metrics": metrics, "methods": list(means), "mean": means}


def test_counts_values_at_or_above_the_published_row(tmp_path):
    mod = load()
    report = {"convention": "cddfuse", "datasets": {
        "msrs": {"table": table({"a": {"SD": 46.0, "SF": 12.29, "AG": 3.0, "VIF": 0.5},
                                 "b": {"SD": 40.0, "SF": 10.0, "AG": 2.0, "VIF": 0.4}})}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    out = tmp_path / "seeds.md"
    assert mod.main([str(tmp_path), "--model", "a", "--out", str(out)]) == 0
    text = out.read_text()
    row_a = next(line for line in text.splitlines() if line.startswith("| **a** |"))
    row_b = next(line for line in text.splitlines() if line.startswith("| b |"))
    assert row_a.endswith("| 2 |") and "**46**" in row_a and "**12.29**" in row_a  # SF equal counts as met
    assert row_b.endswith("| 0 |")
    assert "tno: not in the report" in text


def test_refuses_another_convention(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"convention": "vifb", "datasets": {}}))
    with pytest.raises(SystemExit, match="cddfuse"):
        load().main([str(tmp_path)])
