"""Registration benchmark: deformed pairs with a known field, and a wider visible field of view.

1. ``../shared/data/register/{msrs,roadscene}``: ``ir_warp`` (the infrared deformed by a known
   sampling grid) is registered onto ``vi``; the mean absolute difference between the registered
   image and the undeformed ``ir`` is divided by that between ``ir_warp`` and ``ir``, both inside
   the registration's valid region (lower is better, below 1 means the pair got better).
2. Wider field as in FGFusion's rig: each visible image is warped by a random similarity (scale,
   a few degrees of rotation, shift) into a canvas 1.3-2x its size, filled around by reflection so
   the whole canvas is textured; the infrared is registered into it, and the error is the largest
   distance between the infrared's corners mapped by the estimated and by the true transform.

Writes benchmarks/results/registration.json and prints the Markdown tables of docs/registration.md.

    python benchmarks/registration.py [--cases 100] [--seed 0] [--only deformed|wide]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ivfuse._files import atomic_write
from ivfuse.io import find_pairs, read_image
from ivfuse.registration import RegistrationError, RegistrationParams, estimate
from ivfuse.registration.features import as_gray
from ivfuse.registration.transform import map_points

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
METHODS = ("homography", "flow", "both")


def deformed(methods=METHODS, params=None) -> list[dict]:
    rows = []
    for ds in ("msrs", "roadscene"):
        base = SHARED / "register" / ds
        for f in sorted((base / "flow").glob("*.npy")):
            n = f.stem
            ir = as_gray(read_image(base / "ir" / f"{n}.png"))
            vi = read_image(base / "vi" / f"{n}.png")
            warp = as_gray(read_image(base / "ir_warp" / f"{n}.png"))
            row = {"pair": f"{ds}/{n}", "size": list(ir.shape)}
            for m in methods:
                t = time.perf_counter()
                try:
                    reg = estimate(vi, warp, method=m, name=f"{ds}/{n}", params=params)
                except RegistrationError as exc:
                    row[m] = {"error": str(exc)}
                    continue
                out, valid = reg.apply(warp)
                before = float(np.abs(warp - ir)[valid].mean())
                after = float(np.abs(out - ir)[valid].mean())
                row[m] = {"ratio": after / before, "mad_before": before, "mad_after": after,
                          "valid": float(valid.mean()), "inliers": reg.inliers, "seconds": time.perf_counter() - t,
                          **({"note": reg.extra["homography_error"]} if "homography_error" in reg.extra else {}),
                          **({"dense": reg.extra["dense"]} if "dense" in reg.extra else {})}
            rows.append(row)
            cells = " ".join(f"{m}={row[m].get('ratio', float('nan')):.3f}" for m in methods)
            print(f"{row['pair']:18s} {cells}", file=sys.stderr, flush=True)
    return rows


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty], [0, 0, 1.0]])


def wide_cases(n: int, seed: int):
    import cv2

    rng = np.random.default_rng(seed)
    pairs = []
    for ds in ("msrs", "tno"):
        pairs += [(ds, p) for p in find_pairs(SHARED / "test" / ds).pairs]
    order = rng.permutation(len(pairs))
    for i in range(n):
        ds, pp = pairs[order[i % len(pairs)]]
        ir, vis = read_image(pp.ir), read_image(pp.vis)
        h, w = vis.shape[:2]
        scale = float(rng.uniform(0.8, 1.25))
        angle = float(rng.uniform(-4, 4))
        grow = float(rng.uniform(1.3, 2.0))
        cw, ch = round(w * scale * grow), round(h * scale * grow)
        t0 = _similarity(scale, angle, 0, 0)
        c = map_points(t0, np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float))
        lo, hi = c.min(0), c.max(0)
        tx = float(rng.uniform(-lo[0], cw - 1 - hi[0])) if cw - 1 - hi[0] > -lo[0] else -lo[0]
        ty = float(rng.uniform(-lo[1], ch - 1 - hi[1])) if ch - 1 - hi[1] > -lo[1] else -lo[1]
        t = _similarity(scale, angle, tx, ty)
        canvas = cv2.warpPerspective(vis.astype(np.float32), t, (cw, ch), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101)
        yield {"pair": f"{ds}/{pp.name}", "scale": scale, "angle": angle, "canvas": [ch, cw]}, ir, canvas, t, vis


def _corner_err(est: np.ndarray, true: np.ndarray, shape) -> float:
    h, w = shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
    return float(np.hypot(*(map_points(est, corners) - map_points(true, corners)).T).max())


def wide(n: int, seed: int, params=None, control: bool = False) -> list[dict]:
    """Register each infrared image into its wider visible canvas.

    Besides ``corner_error`` (against the true canvas transform, which takes the public pair as
    exactly aligned), ``native_error`` compares with the true canvas transform composed with the
    infrared-to-visible transform that the same method finds on the original, same-grid pair: what
    the wider field adds. With ``control`` the visible image itself is registered into its canvas
    as well (``control_error``): the accuracy of the search when both sides share a modality.
    """
    rows = []
    for case, ir, canvas, t, vis in wide_cases(n, seed):
        t0 = time.perf_counter()
        try:
            reg = estimate(canvas, ir, method="homography", name=case["pair"], params=params)
            case.update(corner_error=_corner_err(reg.homography, t, ir.shape), inliers=reg.inliers,
                        est_scale=reg.scale, est_angle=reg.angle, fine=reg.extra.get("fine"))
        except RegistrationError as exc:
            reg = None
            case.update(corner_error=None, error=str(exc))
        case["seconds"] = time.perf_counter() - t0
        if reg is not None:
            try:
                native = estimate(vis, ir, method="homography", name=case["pair"], params=params)
                case["native_error"] = _corner_err(reg.homography, t @ native.homography, ir.shape)
            except RegistrationError as exc:
                case["native_error"], case["native_note"] = None, str(exc)
        if control:
            try:
                ctl = estimate(canvas, vis, method="homography", name=case["pair"], params=params)
                case["control_error"] = _corner_err(ctl.homography, t, vis.shape)
            except RegistrationError as exc:
                case["control_error"], case["control_note"] = None, str(exc)
        rows.append(case)
        err = case.get("corner_error")
        print(f"{case['pair']:18s} s={case['scale']:.2f} a={case['angle']:+.1f} "
              f"err={err if err is None else round(err, 2)} native={_r(case.get('native_error'))} "
              f"control={_r(case.get('control_error'))} {case.get('error', '')}", file=sys.stderr, flush=True)
    return rows


def _r(v):
    return v if v is None else round(v, 2)


def deformed_table(rows: list[dict]) -> str:
    lines = ["| pair | " + " | ".join(METHODS) + " |", "|---|" + "---:|" * len(METHODS)]
    for r in rows:
        cells = []
        for m in METHODS:
            v = r.get(m, {})
            cells.append(f"{v['ratio']:.3f}" if "ratio" in v else "fails")
        lines.append(f"| {r['pair']} | " + " | ".join(cells) + " |")
    means, worst = [], []
    for m in METHODS:
        vals = [r[m]["ratio"] for r in rows if "ratio" in r.get(m, {})]
        means.append(f"**{np.mean(vals):.3f}** ({len(rows) - len(vals)} fail)" if vals else "-")
        worst.append(f"{max(vals):.3f}" if vals else "-")
    lines.append("| mean ratio | " + " | ".join(means) + " |")
    lines.append("| worst pair | " + " | ".join(worst) + " |")
    return "\n".join(lines)


def wide_summary(rows: list[dict]) -> dict:
    def stats(key: str) -> dict:
        errs = np.array([r[key] if r.get(key) is not None else np.inf
                         for r in rows if key in r or key == "corner_error"])
        if not len(errs):
            return {}
        return {"cases": len(errs), "under_2px": int((errs < 2).sum()), "under_2px_rate": float((errs < 2).mean()),
                "median_error": float(np.median(errs)), "p95_error": float(np.percentile(errs, 95))}

    out = {**stats("corner_error"), "failed": [r["pair"] + ": " + r["error"] for r in rows if "error" in r],
           "seconds_mean": float(np.mean([r["seconds"] for r in rows]))}
    for key in ("native_error", "control_error"):
        if any(key in r for r in rows):
            out[key.split("_")[0]] = stats(key)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=("deformed", "wide"), default=None)
    ap.add_argument("--control", action="store_true", help="also register the visible image into its canvas")
    ap.add_argument("--refine", choices=("structure", "none"), default="structure",
                    help="fine stage: structure search (default) or keypoints only (the earlier method)")
    ap.add_argument("--dense", choices=("auto", "ngf", "dis", "dis+ngf"), default="auto",
                    help="dense stage of flow/both (RegistrationParams.dense): auto (DIS then NGF for flow, NGF for "
                         "both), ngf, dis (the earlier stage) or dis+ngf")
    ap.add_argument("-o", "--output", default=str(ROOT / "benchmarks" / "results" / "registration.json"))
    args = ap.parse_args()
    params = RegistrationParams(refine=args.refine, dense=args.dense)
    out: dict = {"command": "python " + " ".join(["benchmarks/registration.py", *sys.argv[1:]])}
    if args.only in (None, "deformed"):
        out["deformed"] = deformed(params=params)
        print(deformed_table(out["deformed"]))
    if args.only in (None, "wide"):
        rows = wide(args.cases, args.seed, params, args.control)
        out["wide"] = {"seed": args.seed, "summary": wide_summary(rows), "cases": rows}
        s = out["wide"]["summary"]
        print(f"\nwider field: {s['under_2px']}/{s['cases']} under 2 px ({s['under_2px_rate']:.0%}), median "
              f"{s['median_error']:.2f} px, 95th percentile {s['p95_error']:.2f} px, {len(s['failed'])} failed")
        for key in ("native", "control"):
            if s.get(key):
                print(f"  {key}: {s[key]['under_2px']}/{s[key]['cases']} under 2 px, "
                      f"median {s[key]['median_error']:.2f} px")
        for f in s["failed"]:
            print(f"  failed {f}")
    atomic_write(args.output, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
