"""FusionNet and weak labels: how ROI-SSIM and the global metrics react to thinned and jittered ROI boxes.

The paper's open question 3: is the target-aware loss robust to sparse or noisy boxes? Two
studies, on the TNO test pairs with the engine's pseudo-ROIs as the reference ROI:

* ``eval`` (always run, cheap): the shipped ``fusionnet_cpu`` weights, scored with ROI-SSIM
  when the *evaluation* boxes are thinned (100, 50, 25, 0 percent of the boxes kept, chosen at
  random per box) or jittered (each box moved and rescaled by up to 10, 25, 50 percent of its
  size). This measures how stable the ROI metric itself is under weak labels; the fused images,
  hence the global metrics, do not change.
* ``train`` (``--train-steps N``): one short training of ``fusionnet_cpu`` per setting, with the
  *training* ROI thinned (a fraction of the RoadScene images keep their pseudo-ROI boxes) or
  jittered (the data pipeline's :class:`ivfuse.data.DegradeBoxes`, ``data.degrade.keep`` /
  ``.jitter``), each then scored on TNO with the full pseudo-ROIs (ROI-SSIM) and the global
  metrics. This is the paper's question proper. Run it under the training lock::

      flock /tmp/ivfuse-train.lock python benchmarks/fusionnet_weak_labels.py --train-steps 600

Writes ``<out>/weak_labels.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fusionnet_tno import DEFAULT_DATA, ROOT, fuse_all, load_pairs, markdown, score

from ivfuse.models import create_model

KEEP = [1.0, 0.5, 0.25, 0.0]
JITTER = [0.1, 0.25, 0.5]
GLOBAL = ["EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SSIM"]
TRAIN_DATA = ROOT.parent / "shared" / "data" / "train" / "roadscene"


def thin(boxes: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    """Keep each box with probability ``keep``."""
    return boxes[rng.random(len(boxes)) < keep] if len(boxes) else boxes


def eval_study(pairs, model, convention: str, seed: int) -> dict[str, dict[str, float]]:
    """ROI-SSIM of one model's fused images under thinned and jittered evaluation boxes."""
    from ivfuse.train.recipe_fusionnet import degrade_boxes

    fused = fuse_all(model, pairs)
    rows: dict[str, dict[str, float]] = {}
    for keep in KEEP:
        rng = np.random.default_rng(seed)
        boxes = [thin(info["boxes"], keep, rng) for _, info in pairs]
        res = score(fused, pairs, convention, metrics=[], boxes=boxes)
        n = sum(1 for b in boxes if len(b))
        rows[f"keep {keep:.0%}"] = {"ROI-SSIM": res.get("ROI-SSIM", math.nan), "pairs with ROI": n}
    for jitter in JITTER:
        rng = np.random.default_rng(seed)
        boxes = [degrade_boxes(info["boxes"], jitter, rng) for _, info in pairs]
        res = score(fused, pairs, convention, metrics=[], boxes=boxes)
        rows[f"jitter {jitter:.0%}"] = {
            "ROI-SSIM": res.get("ROI-SSIM", math.nan),
            "pairs with ROI": sum(1 for b in boxes if len(b)),
        }
    return rows


def train_setting(out: Path, steps: int, keep: float, jitter: float, seed: int) -> Path:
    """Train fusionnet_cpu for ``steps`` with a thinned/jittered training ROI; returns the weights."""
    from ivfuse.data import DegradeBoxes
    from ivfuse.train.loop import train
    from ivfuse.train.recipes import make_config

    cfg = make_config("fusionnet_cpu", "cpu")
    cfg.data.path = str(TRAIN_DATA)
    cfg.data.degrade = DegradeBoxes(keep=keep, jitter=jitter, seed=seed)
    cfg.stages[0].length = steps
    cfg.val_path, cfg.val_every = "", 0
    cfg.checkpoint_every = max(steps // 2, 1)
    cfg.seed = seed
    result = train(cfg, out, resume=True, progress=False)
    assert result.weights is not None
    return result.weights


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "fusionnet_cpu" / "weak_labels")
    ap.add_argument("--checkpoint", type=Path, default=None, help="weights for the eval study (default: shipped)")
    ap.add_argument("--convention", default="vifb")
    ap.add_argument("--train-steps", type=int, default=0, help="also run the training study with this many steps")
    ap.add_argument(
        "--settings", default="1:0,0.5:0,0.25:0,0:0,1:0.25", help="training settings keep:jitter, comma-separated"
    )
    ap.add_argument("--skip-eval", action="store_true", help="only the training study")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = load_pairs(args.data)
    report, results = [], {}

    def write() -> None:
        (args.out / "weak_labels.json").write_text(json.dumps(results, indent=2))
        (args.out / "weak_labels.md").write_text("\n".join(report))

    if not args.skip_eval:
        model = create_model("fusionnet_cpu", checkpoint_path=args.checkpoint, pretrained=args.checkpoint is None)
        ev = eval_study(pairs, model, args.convention, args.seed)
        results["eval"] = ev
        title = f"Evaluation boxes thinned / jittered ({args.convention})"
        report.append(markdown(ev, ["ROI-SSIM", "pairs with ROI"], title))
        print(report[-1], flush=True)
        write()

    if args.train_steps > 0:
        settings = [tuple(float(x) for x in item.split(":")) for item in args.settings.split(",") if item]
        rows = results["train"] = {}
        report.append("")
        for keep, jitter in settings:
            t0 = time.perf_counter()
            tag = f"keep{int(keep * 100)}_jit{int(jitter * 100)}"
            weights = train_setting(args.out / tag, args.train_steps, keep, jitter, args.seed)
            net = create_model("fusionnet_cpu", checkpoint_path=weights)
            res = score(fuse_all(net, pairs), pairs, args.convention)
            label = f"train keep {keep:.0%}" + (f", jitter {jitter:.0%}" if jitter else "")
            rows[label] = res
            print(f"{label}: {time.perf_counter() - t0:.0f} s {json.dumps(res)}", flush=True)
            title = f"Training ROI thinned / jittered, {args.train_steps} steps each ({args.convention})"
            report[-1] = markdown(rows, [*GLOBAL, "ROI-SSIM"], title)
            write()
        print(report[-1], flush=True)
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
