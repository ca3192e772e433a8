"""ivfuse.report: the comparison table, its writers, and the one latency timer."""

from __future__ import annotations

import json
import math

import pytest

from ivfuse.evaluation import MethodScores, comparison_table
from ivfuse.report import (
    ComparisonTable,
    markdown_rows,
    table_csv,
    table_html,
    table_latex,
    table_markdown,
    write_table,
)
from ivfuse.timing import measure_latency


def _scores() -> list[MethodScores]:
    a = MethodScores("a", [{"image": "1", "EN": 7.0, "RMSE": 0.2}, {"image": "2", "EN": 6.0, "RMSE": 0.1}])
    b = MethodScores("b", [{"image": "1", "EN": 5.0, "RMSE": 0.3}, {"image": "2", "EN": 5.0, "RMSE": float("nan")}])
    return [a, b]


def test_table_reads_as_the_dict_its_json_holds(tmp_path):
    t = comparison_table(_scores(), ["EN", "RMSE"])
    assert isinstance(t, ComparisonTable)
    assert list(t) == ["metrics", "higher_is_better", "methods", "mean", "n", "count", "rank", "mean_rank",
                       "rank_metrics", "mean_all", "count_all", "left_out", "notes"]
    assert t["mean"]["a"]["EN"] == 6.5 and t.get("rank_metrics") == [] and t == t.to_dict()
    with pytest.raises(KeyError):
        t["nope"]
    assert t.n == {"EN": 2, "RMSE": 1} and t.n_compared() == (2, {"RMSE": 1})
    assert t.rank["a"] == {"EN": 1, "RMSE": 1} and t.rank["b"] == {"EN": 2, "RMSE": 2}
    # A table loaded back from its JSON renders to the same bytes as the one built in memory.
    files = write_table(t, tmp_path, title="x")
    loaded = json.loads(files[2].read_text())
    assert loaded["mean"]["b"]["RMSE"] == 0.3  # only image 1 is compared on RMSE
    back = ComparisonTable.from_dict(loaded)
    assert table_latex(back, caption="x") == files[3].read_text()
    assert table_csv(back) == files[1].read_bytes().decode()
    assert files[0].read_text() == table_markdown(t, "x")
    none = ComparisonTable.from_dict({**loaded, "mean": {"a": {"EN": None, "RMSE": 0.2}, "b": loaded["mean"]["b"]}})
    assert math.isnan(none.mean["a"]["EN"]) and "| a | 2 | **n/a** |" in table_markdown(none)  # JSON null is NaN


def test_from_means_marks_best_second_and_ties():
    t = ComparisonTable.from_means({"p": {"EN": 7.0, "RMSE": 0.1}, "q": {"EN": 7.0, "RMSE": 0.3},
                                    "r": {"EN": 6.0}}, ["EN", "RMSE"], count=3)
    assert t.rank["p"]["EN"] == t.rank["q"]["EN"] == 1 and t.rank["r"]["EN"] == 2  # a tie shares the mark
    assert t.rank["p"]["RMSE"] == 1 and t.rank["q"]["RMSE"] == 2  # RMSE: lower is better
    assert math.isnan(t.mean["r"]["RMSE"]) and t.rank["r"]["RMSE"] is None
    assert t.arrow("EN") == "↑" and t.arrow("RMSE") == "↓" and t.method_n("r") == 3
    md = table_markdown(t)
    assert "| r | 3 | _6.000_ | n/a |" in md and "| p | 3 | **7.000** | **0.1000** |" in md
    ranked = ComparisonTable.from_means({"p": dict.fromkeys("abcdefgh", 1.0)}, list("ab"),
                                        {"a": True, "b": False}, rank_metrics=("a", "b"))
    assert ranked.rank_metrics == ["a", "b"] and ranked.mean_rank == {"p": 1.0}
    assert "mean rank ↓" in table_markdown(ranked)


def test_markdown_rows_and_html():
    assert markdown_rows(["m", "v"], [["x", "1"], ["y", "2"]], "lr") == [
        "| m | v |", "|---|---:|", "| x | 1 |", "| y | 2 |"]
    h = table_html(comparison_table(_scores(), ["EN"]))
    assert '<tr><th>a</th><td>2</td><td class="best">6.5</td></tr>' in h
    assert '<td class="second">5</td>' in h and "&uarr;" in h


def test_measure_latency_counts_warmup_and_repeats():
    calls = []
    t = measure_latency(lambda: calls.append(1), warmup=2, repeat=3)
    assert len(calls) == 5 and len(t.wall_s) == len(t.cpu_s) == 3
    assert t.median_s >= 0 and t.cpu_min_s <= t.cpu_median_s
    with pytest.raises(ValueError, match="repeat"):
        measure_latency(lambda: None, repeat=0)


def test_speed_worker_module_rejects_bad_usage(capsys):
    from ivfuse.bench_speed import main

    assert main(["tiny_cnn", "32"]) == 2
    assert "usage: python -m ivfuse.bench_speed" in capsys.readouterr().err
