"""benchmarks/targets.py: the issue-8 target checks on a report's tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "targets.py"


@pytest.fixture(scope="module")
def targets():
    spec = importlib.util.spec_from_file_location("ivfuse_bench_targets", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _table(means: dict[str, list[float]]) -> dict:
    metrics = ["EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM"]
    return {
        "methods": list(means),
        "higher_is_better": {m: True for m in metrics},
        "mean": {k: dict(zip(metrics, v)) for k, v in means.items()},
    }


def test_tno_wins_and_peer_ranks(targets):
    t = _table({
        "ours": [7, 5, 1, 1, 9, 9, 1, 1],
        "gff": [6, 6, 2, 2, 1, 1, 2, 2],
        "max": [1, 1, 1, 1, 1, 1, 1, 3],
    })
    rows = targets.tno_wins(t, "ours")
    assert [r[4] for r in rows] == [True, False, False, False, True, True, False, False]
    assert rows[1][2:4] == ("gff", 6)  # best baseline on SD and its value
    ranks = targets.peer_ranks(t, "ours", own={"ours", "gff"})
    assert [r[2] for r in ranks] == [1, 1, 1, 1, 1, 1, 1, 2]  # only "max" counts as a peer here


def test_published_wins_counts_baselines_beaten_and_top_five(targets):
    base = {b: [5] * 8 for b in targets.BASELINES}
    peers = {f"p{i}": [4] * 8 for i in range(6)}
    peers["star"] = [6, 6, 6, 4, 4, 4, 4, 4]  # beats every baseline on EN, SD, SF
    peers["low"] = [3, 3, 3, 3, 3, 3, 3, 9]  # six or seven methods ahead except on SSIM
    t = _table({"ours": [1] * 8, **base, **peers})
    rows = {p: (w, top) for p, w, top in targets.published_wins(t, own={"ours", *targets.BASELINES})}
    assert "ours" not in rows and "gff" not in rows
    assert rows["star"] == (3, 8)  # ties do not count as ahead; on SSIM only "low" is ahead
    assert rows["p0"] == (0, 8)  # at most one method ahead anywhere
    assert rows["low"] == (1, 1)  # 7 methods ahead except on SSIM, where it beats the baselines too
    assert targets.published_wins(_table({"ours": [1] * 8, **peers}), own={"ours"}) == []  # no baselines


def test_rank_table_orders_by_mean_rank_with_ties_averaged(targets):
    t = _table({
        "ours": [7, 5, 1, 1, 9, 9, 1, 1],   # ranks 1, 2, 2.5, 2.5, 1, 1, 2.5, 3 -> 15.5 / 8
        "gff": [6, 6, 2, 2, 1, 1, 2, 2],    # ranks 2, 1, 1, 1, 2.5, 2.5, 1, 2 -> 13 / 8
        "max": [1, 1, 1, 1, 1, 1, 1, 3],    # ranks 3, 3, 2.5, 2.5, 2.5, 2.5, 2.5, 1 -> 19.5 / 8
    })
    lines = targets.rank_table(t, "ours")
    body = [line.split(" | ")[1:3] for line in lines[2:]]
    assert body == [["gff", "1.62"], ["**ours**", "1.94"], ["max", "2.44"]]
