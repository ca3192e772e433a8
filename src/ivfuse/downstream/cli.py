"""``ivfuse downstream detect``: detection trained and evaluated on each input (PoMAI Table 4).

``ivfuse downstream detect --train DIR --test DIR [--sources vis,ir] [--fused NAME=DIR|MODEL ...]
[--epochs E] [--imgsz S] [--seeds K] [--model-yaml yolov8n.yaml] [--weights FILE] -o OUT`` writes
``OUT/detect.{md,csv,json,tex}`` and ``OUT/detect_per_class.png`` (see :mod:`ivfuse.downstream.detect`).

Exit codes: 0 done; 1 the input was unusable (one line naming the file), or images were left out
(named on stderr and in the tables' notes; the tables are still written); 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def _names(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise ValueError(f"--classes '{text}': empty class name")
    return names


def add_parser(sub) -> None:
    p = sub.add_parser(
        "downstream",
        help="downstream tasks on fused images: detection trained per input",
        description="Downstream tasks that use fused images: `ivfuse downstream detect`.",
    )
    # --threads and --debug belong to the task (`ivfuse downstream detect --threads 1`); here they are only
    # declared, hidden and unset, so that the common options are not added a second time to this level.
    for flag in ("--threads", "--debug"):
        p.add_argument(flag, help=argparse.SUPPRESS, default=argparse.SUPPRESS,
                       **({"action": "store_true"} if flag == "--debug" else {}))
    tasks = p.add_subparsers(dest="task", metavar="TASK")
    tasks.required = True
    d = tasks.add_parser(
        "detect",
        help="train and evaluate one detector per input (visible, infrared, fused): mAP per class",
        description="For each input (visible, infrared, each fused method) build a YOLO dataset from the dataset's "
        "labels/ folder, train the same Ultralytics YOLO detector with the same schedule and seed on the train split "
        "and evaluate it on the test split: mAP@0.5 and mAP@[.5:.95] per class and overall, mean and spread over the "
        "seeds. Needs pip install 'ivfuse[detect]' (Ultralytics, AGPL-3.0). Runs offline: nothing is downloaded.",
    )
    d.add_argument("--train", required=True, help="train dataset folder (ir/, vi/, labels/ of YOLO txt files)")
    d.add_argument("--test", required=True, help="test dataset folder (the same layout)")
    d.add_argument("--fused", action="append", default=[], metavar="NAME=DIR|MODEL",
                   help="a fused input: a folder of fused images (with train/ and test/ subfolders, or both splits in "
                        "one folder) or an ivfuse model fused on the fly into OUT/fused/NAME; repeat for several")
    d.add_argument("--sources", default="vis,ir", help="source inputs to compare with: vis, ir, both (default) or ''")
    d.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    d.add_argument("--imgsz", type=int, default=320,
                   help="training and test image side, a multiple of 32 (default 320)")
    d.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    d.add_argument("--seeds", type=int, default=1, metavar="K", help="train with seeds 0..K-1 (default 1)")
    d.add_argument("--model-yaml", default="yolov8n.yaml",
                   help="Ultralytics architecture trained from scratch (default yolov8n.yaml)")
    d.add_argument("--weights", default=None, help="start from this .pt file instead (it must exist)")
    d.add_argument("--classes", default=None, metavar="A,B,...",
                   help="class names in id order (default: labels/classes.txt of the train split)")
    d.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    d.add_argument("--resume", action="store_true",
                   help="keep runs (and fused images) a previous call with the same settings finished")
    d.add_argument("-o", "--output", required=True, help="output folder")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    d.add_argument("--threads", default="auto", metavar="N|auto",
                   help="CPU threads (default auto: the cores not busy now, from the load average)")
    d.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    d.set_defaults(func=_cmd_detect)


def _cmd_detect(args) -> int:
    import torch

    from .detect import DetectSettings, run_detection
    from .inputs import parse_fused, parse_sources

    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    inputs = parse_sources(args.sources) + [parse_fused(s) for s in args.fused]
    settings = DetectSettings(model_yaml=args.model_yaml, weights=args.weights, epochs=args.epochs, imgsz=args.imgsz,
                              batch=args.batch, device=args.device, threads=torch.get_num_threads())
    res = run_detection(args.train, args.test, inputs, args.output, settings, seeds=range(args.seeds),
                        names=_names(args.classes), resume=args.resume, progress=not args.quiet)
    from .report import table_markdown

    print(table_markdown(res.table), end="")
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in res.files)}")
    return 1 if res.left_out else 0
