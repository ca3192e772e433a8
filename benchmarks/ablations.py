"""The seeds' ablation tables as one command each: train every row on the same budget, score, tabulate.

    python benchmarks/ablations.py pomai      # PoMAI Table 2: w/o NGMM, CAMN, MICM, two-stage, freezing; full
    python benchmarks/ablations.py fgfusion   # FGFusion Table 5 rows that change the fused image: w/o Ex, FE, MASK
    python benchmarks/ablations.py fusionnet  # FusionNet's components: no attention, no alpha blending, no ROI term

Every row trains the same model variant (``--model``, default the CPU variant) with the same
recipe, steps, data and seeds; only the ablated component differs. Each (row, seed) run is its
own run folder under ``--out`` and resumes where it stopped when the command is run again
(``ivfuse train --resume`` semantics), so an interrupted campaign costs only its last
checkpoint interval. The trained networks fuse the test sets (default ``test/msrs`` and
``test/tno`` from ``../shared/data``) and are scored with ivfuse's metrics; the table gives the
mean and spread over the seeds, the mean rank over EN, SD, SF, AG, MI, VIF, Qabf, SSIM among the
rows, and the paper's own numbers beside ours where the paper has them (PoMAI's are on MSRS,
CDDFuse's evaluator, which the ``cddfuse`` columns use).

Writes ``OUT/ablations_<paper>.md`` and ``.json``; ``--steps 2 --seeds 0`` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RANK = ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM")

# Each paper: its recipe module, default model, rows in the paper's order, the paper's labels and numbers.
PAPERS = {
    "pomai": {
        "module": "ivfuse.train.recipe_pomai", "model": "pomai_cpu",
        "rows": ["wo_ngmm", "wo_camn", "wo_micm", "wo_two_stage", "wo_freeze", "full"],
        "labels": {"wo_ngmm": "I w/o NGMM", "wo_camn": "II w/o CAMN", "wo_micm": "III w/o MICM",
                   "wo_two_stage": "IV w/o two-stage", "wo_freeze": "V w/o freezing", "full": "PoMAI (full)"},
        # Table 2, MSRS test set: SD, SF, AG, VIF.
        "paper": {"columns": ["SD", "SF", "AG", "VIF"], "set": "msrs", "convention": "cddfuse",
                  "values": {"wo_ngmm": [44.51, 11.69, 3.65, 0.92], "wo_camn": [44.48, 11.72, 3.69, 0.91],
                             "wo_micm": [42.93, 11.36, 3.57, 0.84], "wo_two_stage": [43.04, 11.48, 3.72, 0.89],
                             "wo_freeze": [43.67, 11.33, 3.70, 0.92], "full": [45.11, 12.29, 3.84, 0.97]}},
    },
    "fgfusion": {
        "module": "ivfuse.train.recipe_fgfusion", "model": "fgfusion_cpu",
        "rows": ["wo_ex", "wo_fe", "wo_mask", "full"],
        "labels": {"wo_ex": "w/o Ex", "wo_fe": "w/o FE", "wo_mask": "w/o MASK", "full": "FGFusion (full)"},
        # Table 5 measures downstream tasks only (keypoint mAP[50,95], segmentation mIoU, detection mAP[50,95]).
        "paper": {"columns": ["KDet mAP", "SSeg mIoU", "ODet mAP"], "set": "downstream", "convention": "",
                  "values": {"wo_ex": [61.63, 62.93, 54.9], "wo_fe": [62.31, 63.66, 55.1],
                             "wo_mask": [63.94, 58.84, 54.4], "full": [66.18, 69.89, 55.4]}},
    },
    "fusionnet": {
        "module": "ivfuse.train.recipe_fusionnet", "model": "fusionnet_cpu",
        "rows": ["wo_attention", "wo_alpha", "wo_roi", "full"],
        "labels": {"wo_attention": "no attention", "wo_alpha": "no alpha blending", "wo_roi": "no ROI term",
                   "full": "FusionNet (full)"},
        "paper": None,  # the paper proposes these ablations and reports no numbers
    },
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paper", choices=sorted(PAPERS))
    p.add_argument("--model", default=None, help="model variant (default: the paper's CPU variant)")
    p.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    p.add_argument("--steps", type=int, default=800, help="optimizer steps per run (every row the same)")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (at least two for a spread)")
    p.add_argument("--rows", default=None, help="comma-separated subset of the rows (default: all)")
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="training folder; repeat (default: train/roadscene and train/msrs)")
    p.add_argument("--test", action="append", default=None, metavar="NAME=DIR",
                   help="test set; repeat (default: msrs=test/msrs, tno=test/tno)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="campaign folder (default runs/ablations/<paper>)")
    p.add_argument("-q", "--quiet", action="store_true")
    return p.parse_args(argv)


def run_config(paper: str, row: str, args, seed: int, data: list[str]):
    import importlib

    from ivfuse.train.cli import scale_to_steps

    spec = PAPERS[paper]
    cfg = importlib.import_module(spec["module"]).ablation_config(row, args.preset, args.model or spec["model"])
    cfg = scale_to_steps(cfg, args.steps)
    cfg.seed, cfg.threads, cfg.device = seed, args.threads, args.device
    cfg.data.path, cfg.data.ir_dir, cfg.data.vis_dir = data[0], "", ""
    cfg.data.more = list(data[1:])
    cfg.val_every, cfg.val_path = 0, ""
    cfg.checkpoint_every = max(1, min(cfg.checkpoint_every or 200, args.steps))
    return cfg


def fuse_set(net, folder: Path, out: Path) -> dict[str, Path]:
    """Fuse every pair of ``folder`` into ``out`` (kept: a rerun scores what is there)."""
    from ivfuse.api import fuse
    from ivfuse.io import find_pairs

    out.mkdir(parents=True, exist_ok=True)
    fused = {}
    for pp in find_pairs(folder).pairs:
        path = out / f"{pp.name}.png"
        if not path.exists():
            fuse(pp.ir, pp.vis, model=net, output=path)
        fused[pp.name] = path
    return fused


def score(folder: Path, fused: dict[str, Path], convention: str) -> dict[str, float]:
    from ivfuse.evaluation import score_method
    from ivfuse.io import find_pairs

    sc = score_method("x", find_pairs(folder).pairs, fused, metrics=list(RANK), convention=convention, progress=False)
    if sc.problems:
        raise RuntimeError(f"{folder}: could not score {len(sc.problems)} images: {sc.problems[:3]}")
    return {m: sc.mean(m) for m in RANK}


def train_and_score(paper: str, row: str, seed: int, args, data, tests, out: Path) -> dict:
    from ivfuse.train.loop import train

    run_dir = out / row / f"seed{seed}"
    result_file = run_dir / "scores.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    cfg = run_config(paper, row, args, seed, data)
    t0 = time.perf_counter()
    res = train(cfg, run_dir, resume=True, progress=not args.quiet)
    wall = time.perf_counter() - t0
    net = res.model.eval()
    scores = {"row": row, "seed": seed, "steps": res.steps, "train_s": round(wall, 1), "sets": {}}
    for name, folder in tests.items():
        fused = fuse_set(net, Path(folder), run_dir / "fused" / name)
        scores["sets"][name] = {conv: score(Path(folder), fused, conv) for conv in ("vifb", "cddfuse")}
    result_file.write_text(json.dumps(scores, indent=1))
    return scores


def summarise(paper: str, results: list[dict], rows: list[str], tests: dict) -> dict:
    from ivfuse.evaluation import mean_ranks

    table: dict = {"paper": paper, "sets": {}}
    for name in tests:
        per_row = {}
        for row in rows:
            runs = [r["sets"][name] for r in results if r["row"] == row]
            agg = {}
            for conv in ("vifb", "cddfuse"):
                agg[conv] = {}
                for m in runs[0][conv]:
                    vals = [r[conv][m] for r in runs]
                    agg[conv][m] = {"mean": statistics.fmean(vals),
                                    "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}
            per_row[row] = agg
        ranks = mean_ranks({row: {m: v["mean"] for m, v in per_row[row]["vifb"].items()} for row in rows},
                           {m: True for m in RANK})
        table["sets"][name] = {"rows": per_row, "mean_rank": ranks}
    return table


def _f(v: float, digits: int = 3) -> str:
    return "nan" if math.isnan(v) else f"{v:.{digits}f}"


def markdown(paper: str, table: dict, rows: list[str], args, data, wall: float) -> str:
    spec = PAPERS[paper]
    lines = [f"# Ablations: {paper}", "",
             f"`python benchmarks/ablations.py {paper} --steps {args.steps} --seeds {args.seeds}` "
             f"(model `{args.model or spec['model']}`, preset `{args.preset}`, training data: "
             f"{', '.join(Path(d).name for d in data)}; {wall / 60:.1f} min wall time in all). "
             "Values are means over the seeds, ± their standard deviation; mean rank over EN, SD, SF, AG, MI, "
             "VIF, Qabf, SSIM (vifb convention) among the rows (1 = best).", ""]
    for name, st in table["sets"].items():
        lines += [f"## {name}, vifb convention", "",
                  "| row | " + " | ".join(RANK) + " | mean rank |", "|---|" + "---:|" * (len(RANK) + 1)]
        for row in rows:
            v = st["rows"][row]["vifb"]
            cells = [f"{_f(v[m]['mean'])} ± {_f(v[m]['std'])}" for m in RANK]
            lines.append(f"| {spec['labels'][row]} | " + " | ".join(cells) + f" | {st['mean_rank'][row]:.2f} |")
        lines.append("")
    ref = spec["paper"]
    if ref and ref["set"] in table["sets"]:
        cols = ref["columns"]
        st = table["sets"][ref["set"]]
        lines += [f"## Beside the paper ({ref['set']}, {ref['convention']} convention)", "",
                  "| row | " + " | ".join(f"{c} ours" for c in cols) + " | " + " | ".join(f"{c} paper" for c in cols)
                  + " |", "|---|" + "---:|" * (2 * len(cols))]
        for row in rows:
            v = st["rows"][row][ref["convention"]]
            ours = [_f(v[c]["mean"]) for c in cols]
            theirs = [f"{x:g}" for x in ref["values"][row]]
            lines.append(f"| {spec['labels'][row]} | " + " | ".join(ours) + " | " + " | ".join(theirs) + " |")
        lines += ["", "The paper's numbers come from its own training (MSRS train split, 100 epochs, paper-size "
                  "network on a GPU); ours from the budget above. Compare the order of the rows, not the values.", ""]
    elif ref:
        cols = ref["columns"]
        lines += ["## The paper's table (downstream tasks; not measured by this script)", "",
                  "| row | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        for row in rows:
            lines.append(f"| {spec['labels'][row]} | " + " | ".join(f"{x:g}" for x in ref["values"][row]) + " |")
        lines.append("")
    else:
        lines += ["The paper proposes these ablations and reports no numbers.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    spec = PAPERS[args.paper]
    rows = args.rows.split(",") if args.rows else spec["rows"]
    unknown = [r for r in rows if r not in spec["rows"]]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose from {spec['rows']}")
    seeds = [int(s) for s in args.seeds.split(",")]
    data = args.data or [str(SHARED / "train" / "roadscene"), str(SHARED / "train" / "msrs")]
    tests = dict(t.split("=", 1) for t in args.test) if args.test else {
        "msrs": str(SHARED / "test" / "msrs"), "tno": str(SHARED / "test" / "tno")}
    for d in [*data, *tests.values()]:
        if not Path(d).is_dir():
            raise SystemExit(f"'{d}': folder not found")
    out = Path(args.out or ROOT / "runs" / "ablations" / args.paper)
    t0 = time.perf_counter()
    results = []
    for row in rows:
        for seed in seeds:
            if not args.quiet:
                print(f"[{args.paper}] {row} seed {seed}", file=sys.stderr, flush=True)
            results.append(train_and_score(args.paper, row, seed, args, data, tests, out))
    table = summarise(args.paper, results, rows, tests)
    wall = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    (out / f"ablations_{args.paper}.json").write_text(json.dumps({"table": table, "runs": results}, indent=1))
    md = markdown(args.paper, table, rows, args, data, wall)
    (out / f"ablations_{args.paper}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
