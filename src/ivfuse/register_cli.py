"""``ivfuse register``: align infrared/visible pairs from a camera rig before fusing them."""

from __future__ import annotations

import sys

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "register",
        help="register infrared/visible pairs (template matching, ORB + homography, optional dense flow)",
        description="Register an infrared/visible pair (--ir FILE --vis FILE) or two folders of pairs matched by "
        "name. Writes OUT/ir/NAME and OUT/vi/NAME (the moving image resampled onto the fixed grid), "
        "OUT/transforms/NAME.json (and NAME.npy with a dense field), OUT/mask/NAME.png and OUT/overlay/NAME.png. "
        "Needs OpenCV: pip install 'ivfuse[cv]'.",
    )
    p.add_argument("--ir", required=True, help="infrared image or folder")
    p.add_argument("--vis", required=True, help="visible image or folder")
    p.add_argument("-o", "--output", required=True, help="output folder (not inside an input folder)")
    p.add_argument("--moving", choices=("ir", "vis"), default="ir",
                   help="the image resampled onto the other's grid (default ir: onto the visible grid)")
    p.add_argument("--method", choices=("homography", "flow", "both"), default="homography",
                   help="global homography, dense flow, or homography then a dense residual (default homography)")
    p.add_argument("--fixed-rig", type=int, default=None, metavar="N",
                   help="estimate one transform from the first N pairs and apply it to all (a rigid rig)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never an input)")
    p.set_defaults(func=_cmd_register)


def _cmd_register(args) -> int:
    from .registration import register

    if args.fixed_rig is not None and args.fixed_rig < 1:
        raise ValueError(f"--fixed-rig must be at least 1, got {args.fixed_rig}")
    res = register(args.ir, args.vis, args.output, moving=args.moving, method=args.method,
                   fixed_rig=args.fixed_rig, overwrite=args.overwrite)
    code = 0
    if res.rig is not None:
        r = res.rig
        print(f"rig transform from '{r.name}' (scale {r.scale:.3f}, angle {r.angle:.2f} deg, {r.inliers} inliers)")
    for name, msg in res.failed:
        print(f"failed {name}: {msg}", file=sys.stderr)
    if res.skipped:
        code = 1
        print(f"{len(res.skipped)} pairs have outputs in {args.output} already, kept (--overwrite replaces them)",
              file=sys.stderr)
    if res.unmatched:
        print(f"{len(res.unmatched)} files without a partner (not registered)")
    if res.failed:
        code = 1
    print(f"registered {len(res.done)} pairs into {args.output}, {len(res.failed)} failed, {len(res.skipped)} kept")
    return code
