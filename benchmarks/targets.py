"""Check the benchmark targets against an ``ivfuse bench`` report and print them as Markdown.

    python benchmarks/targets.py runs/report [--model fusionnet_cpu] [--out docs/benchmark/targets.md]

For the model (default: ``ivfuse.DEFAULT_MODEL``):

* TNO: on which of EN, SD, SF, AG, MI, VIF, Qabf, SSIM it beats every training-free baseline
  (target: at least 6 of 8);
* VIFB pairs: its rank among the published methods' fused images (the peers of that table) on each
  metric, 1 = best (target: top five on at least 5 of 8);
* speed: its median latency per 640x480 pair (target: at most 0.15 s on two cores) from the speed table;
* the quality figure, per table: every method's mean rank over the 8 metrics among all methods of
  the table (published ones included; 1 = best, ties averaged), and the model's place by it.

For scale, the same two tests applied to the published methods, on every table that has both the
baselines and published methods' outputs (the VIFB pairs, Tang's TNO pairs): how many of the 8
metrics each method beats every baseline on, and on how many it is in the top five of the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from ivfuse.report import RANK_METRICS, ComparisonTable, markdown_rows, mean_ranks

TARGET_METRICS = list(RANK_METRICS)
BASELINES = ["average", "max", "laplacian", "dwt", "gff"]


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def tno_wins(table: dict, model: str) -> list[tuple[str, float, str, float, bool]]:
    """Per metric: the model's mean, the best baseline and its mean, and whether the model beats it."""
    rows = []
    for m in TARGET_METRICS:
        higher = table["higher_is_better"][m]
        ours = table["mean"][model][m]
        base = [(b, table["mean"][b][m]) for b in BASELINES if b in table["mean"]]
        best_name, best = (max if higher else min)(base, key=lambda kv: kv[1])
        rows.append((m, ours, best_name, best, _better(ours, best, higher)))
    return rows


def peer_ranks(table: dict, model: str, own: set[str]) -> list[tuple[str, float, int, int]]:
    """Per metric: the model's mean, its rank among the peers plus itself, and the number of peers."""
    peers = [p for p in table["methods"] if p not in own]
    rows = []
    for m in TARGET_METRICS:
        higher = table["higher_is_better"][m]
        ours = table["mean"][model][m]
        ahead = sum(_better(table["mean"][p][m], ours, higher) for p in peers)
        rows.append((m, ours, ahead + 1, len(peers)))
    return rows


def published_wins(table: dict, own: set[str]) -> list[tuple[str, int, int]]:
    """Per published method (a peer) of a table that also holds the baselines: on how many of the 8
    metrics it beats every baseline, and on how many it is in the top five of the other methods of
    the table that are not baselines (the other peers and the report's own models)."""
    peers = [p for p in table["methods"] if p not in own]
    base = [b for b in BASELINES if b in table["mean"]]
    if not base or not peers:
        return []
    others_pool = [p for p in table["methods"] if p not in BASELINES]
    rows = []
    for p in peers:
        wins = top5 = 0
        for m in TARGET_METRICS:
            higher = table["higher_is_better"][m]
            v = table["mean"][p][m]
            wins += all(_better(v, table["mean"][b][m], higher) for b in base)
            ahead = sum(_better(table["mean"][o][m], v, higher) for o in others_pool if o != p)
            top5 += ahead < 5
        rows.append((p, wins, top5))
    return sorted(rows, key=lambda r: (-r[1], -r[2], r[0]))


def rank_table(table: Mapping, model: str | None = None) -> list[str]:
    """Markdown lines: the methods of a table sorted by mean rank over the 8 metrics."""
    t = ComparisonTable.from_dict(table)
    ranks = mean_ranks(t.mean, t.higher_is_better, TARGET_METRICS)
    order = sorted(ranks, key=lambda k: (ranks[k], k))
    rows = [[str(i), f"**{k}**" if k == model else k, f"{ranks[k]:.2f}"]
            + [f"{t.mean[k][m]:.4g}" for m in TARGET_METRICS] for i, k in enumerate(order, 1)]
    return markdown_rows(["place", "method", "mean rank", *TARGET_METRICS], rows, "rlr" + "r" * len(TARGET_METRICS))


def headline(report: dict, label: str = "tno") -> str:
    """The README's table: each model's TNO means on the 8 target metrics, its latency and parameters."""
    full = ComparisonTable.from_dict(report["datasets"][label]["table"])
    t = ComparisonTable.from_means(full.mean, TARGET_METRICS, full.higher_is_better)
    speed = {s["model"]: s for s in report.get("speed", [])}
    rows = []
    for k in t.methods:
        cells = [f"`{k}`"]
        for m in TARGET_METRICS:
            v = t.mean[k][m]
            mk = {1: "**", 2: "_"}.get(t.rank[k][m], "")
            cells.append(f"{mk}{v:.3f}{mk}" if abs(v) < 10 else f"{mk}{v:.2f}{mk}")
        sp = speed.get(k)
        cells += [f"{sp['latency_s']:.3f}" if sp else "-", f"{sp['params']:,}" if sp else "-"]
        rows.append(cells)
    head = ["method", *(f"{m} {t.arrow(m)}" for m in TARGET_METRICS), "s / 640x480", "params"]
    return "\n".join(markdown_rows(head, rows, "l" + "r" * (len(head) - 1)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path, help="folder written by ivfuse bench (report.json)")
    ap.add_argument("--model", default=None, help="model to check (default: ivfuse.DEFAULT_MODEL)")
    ap.add_argument("--tno", default="tno", help="label of the TNO table")
    ap.add_argument("--vifb", default="vifb", help="label of the VIFB table")
    ap.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    ap.add_argument("--headline", action="store_true", help="print the README's headline table instead")
    args = ap.parse_args(argv)
    if args.model is None:
        from ivfuse import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    report = json.loads((args.report / "report.json").read_text())
    if args.headline:
        print(headline(report, args.tno))
        return 0
    datasets = report["datasets"]
    # The report's own models (not peers): those of the speed table and of the TNO table, which has no peers.
    own = {s["model"] for s in report.get("speed", [])} | set(BASELINES)
    own |= set(datasets.get(args.tno, {}).get("table", {}).get("methods", []))
    lines = [f"# Benchmark targets: `{args.model}`", ""]
    for label, data in datasets.items():
        table = data["table"]
        if not all(m in table["higher_is_better"] for m in TARGET_METRICS) or args.model not in table["mean"]:
            continue
        ranked = rank_table(table, args.model)
        place = next(i for i, line in enumerate(ranked[2:], 1) if f"**{args.model}**" in line)
        lines += [f"## Quality figure, {label}: `{args.model}` is {place} of {len(ranked) - 2} by mean rank", "",
                  *ranked, ""]

    if args.tno in datasets:
        rows = tno_wins(datasets[args.tno]["table"], args.model)
        wins = sum(r[4] for r in rows)
        lines += [f"## TNO: beats every training-free baseline on {wins} of 8 (target: 6)", ""]
        lines += markdown_rows(["metric", args.model, "best baseline", "its value", "beaten"],
                               [[m, f"{o:.4g}", b, f"{v:.4g}", "yes" if w else "no"] for m, o, b, v, w in rows],
                               "lrlrl")
        lines.append("")
    if args.vifb in datasets:
        rows = peer_ranks(datasets[args.vifb]["table"], args.model, own)
        top5 = sum(r[2] <= 5 for r in rows)
        n = rows[0][3] if rows else 0
        lines += [f"## VIFB pairs: in the top five of the {n} published methods on {top5} of 8 (target: 5)", ""]
        lines += markdown_rows(["metric", args.model, "rank (1 = best)"],
                               [[m, f"{o:.4g}", f"{r} of {k + 1}"] for m, o, r, k in rows], "lrr")
        lines.append("")
    speed = {s["model"]: s for s in report.get("speed", [])}
    if args.model in speed:
        s = speed[args.model]
        lat = s["latency_s"]
        lines += [f"## Speed: {lat:.3f} s per 640x480 pair (target: 0.15 s), {s['peak_mb']:.0f} MB peak", ""]
    for label, data in datasets.items():
        rows = published_wins(data["table"], own)
        if not rows:
            continue
        best = max(r[1] for r in rows)
        lines += [f"## For scale, {label}: the published methods against the same tests", "",
                  (f"{len(rows)} published methods; the most any of them beats every baseline on is {best} of 8, "
                   f"{sum(r[2] >= 5 for r in rows)} of them are in the top five of the others on at least 5 of 8."), ""]
        lines += markdown_rows(["method", "beats every baseline on (of 8)", "top five of the others on (of 8)"],
                               [[p, str(w), str(t)] for p, w, t in rows], "lrr")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
