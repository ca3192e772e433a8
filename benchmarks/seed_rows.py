"""Our networks beside the numbers the seeds publish: PoMAI's Table 1 MSRS row, CDDFuse's TNO row.

    python benchmarks/seed_rows.py runs/report/cddfuse [--out docs/benchmark/seeds.md]

Reads an ``ivfuse bench --convention cddfuse`` report (``report.json``) that has the tables
``msrs`` (``../shared/data/test/msrs``) and ``tno`` (``../shared/data/test/tno``), and writes
each method's values next to the published row, with how many of the published values it meets
(at or above; all these metrics are higher-is-better).

The published rows come from larger training sets and paper-size networks trained on GPUs:
PoMAI trains on MSRS's 1,083 training pairs (ours: 160 of them plus RoadScene's 168), CDDFuse on
MSRS's training split too; both test on their own splits (PoMAI's MSRS test set has 361 pairs,
``test/msrs`` 40 of them; TNO's selection differs between papers). Compare orders of magnitude and
directions, not third digits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: (table label, source, {metric: value}).
PUBLISHED = [
    ("msrs", "PoMAI (IJCAI 2025), Table 1, MSRS", {"SD": 45.11, "SF": 12.29, "AG": 3.84, "VIF": 0.97}),
    ("tno", "CDDFuse (CVPR 2023), TNO", {"EN": 7.12, "SD": 46.00, "SF": 13.15, "MI": 2.19, "SCD": 1.76,
                                          "VIF": 0.77, "Qabf": 0.54, "SSIM": 1.03}),
]


def section(label: str, source: str, row: dict[str, float], table: dict, model: str | None) -> list[str]:
    metrics = [m for m in row if m in table["metrics"]]
    missing = [m for m in row if m not in table["metrics"]]
    head = f"## {label}: beside {source}"
    lines = [head, "", "| method | " + " | ".join(metrics) + " | meets (of %d) |" % len(metrics),
             "|---|" + "---:|" * (len(metrics) + 1),
             "| *published* | " + " | ".join(f"{row[m]:g}" for m in metrics) + " | - |"]
    order = sorted(table["methods"], key=lambda n: -sum(table["mean"][n].get(m, float("nan")) >= row[m]
                                                        for m in metrics))
    for name in order:
        vals = table["mean"][name]
        meets = sum(vals.get(m, float("nan")) >= row[m] for m in metrics)
        cells = [(f"**{vals[m]:.4g}**" if vals[m] >= row[m] else f"{vals[m]:.4g}") if m in vals else "-"
                 for m in metrics]
        shown = f"**{name}**" if name == model else name
        lines.append(f"| {shown} | " + " | ".join(cells) + f" | {meets} |")
    lines.append("")
    if missing:
        lines += [f"Not in the report: {', '.join(missing)}.", ""]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path, help="folder of an ivfuse bench --convention cddfuse report")
    ap.add_argument("--model", default=None, help="model to mark (default: ivfuse.DEFAULT_MODEL)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.model is None:
        from ivfuse import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    report = json.loads((args.report / "report.json").read_text())
    if report.get("convention") not in (None, "cddfuse"):
        raise SystemExit(f"{args.report}: convention {report['convention']!r}; the published rows use cddfuse")
    lines = ["# Our networks beside the seeds' published numbers", "",
             "Values under the `cddfuse` convention (CDDFuse's evaluator, which PoMAI's and CDDFuse's tables use); "
             "**bold**: at or above the published value. Made by `bash benchmarks/report.sh` "
             "(`python benchmarks/seed_rows.py REPORT/cddfuse`).", "",
             "The data differ: the published networks are paper-size, trained on GPUs on MSRS's 1,083 training "
             "pairs and tested on their own splits (PoMAI's MSRS test set: 361 pairs; `test/msrs` holds 40 of "
             "them); ours are the CPU variants trained on 160 MSRS + 168 RoadScene pairs.", ""]
    for label, source, row in PUBLISHED:
        data = report["datasets"].get(label)
        if data is None:
            lines += [f"## {label}: not in the report", ""]
            continue
        lines += section(label, source, row, data["table"], args.model)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
