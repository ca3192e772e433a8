"""``ivfuse downstream detect|segment``: a detector or a segmentation network trained and evaluated on each input.

``ivfuse downstream detect --train DIR --test DIR [--sources vis,ir] [--fused NAME=DIR|MODEL ...]
[--epochs E] [--imgsz S] [--seeds K] [--model-yaml yolov8n.yaml] [--weights FILE] -o OUT`` writes
``OUT/detect.{md,csv,json,tex}`` and ``OUT/detect_per_class.png`` (see :mod:`ivfuse.downstream.detect`,
PoMAI Table 4). ``ivfuse downstream segment`` takes the same inputs and options, with ``--arch`` and
``--num-classes``, and writes ``OUT/segment.{md,csv,json,tex}`` and ``OUT/segment_per_class.png`` (see
:mod:`ivfuse.downstream.segment`).

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
        help="downstream tasks on fused images: detection or segmentation trained per input",
        description="Downstream tasks that use fused images: `ivfuse downstream detect`, `ivfuse downstream segment`.",
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
    _common(d, "ir/, vi/, labels/ of YOLO txt files", "training and test image side", 16)
    d.add_argument("--model-yaml", default="yolov8n.yaml",
                   help="Ultralytics architecture trained from scratch (default yolov8n.yaml)")
    d.add_argument("--weights", default=None, help="start from this .pt file instead (it must exist)")
    d.add_argument("--classes", default=None, metavar="A,B,...",
                   help="class names in id order (default: labels/classes.txt of the train split)")
    _tail(d)
    d.set_defaults(func=_cmd_detect)
    from .segnet import ARCHS

    g = tasks.add_parser(
        "segment",
        help="train and evaluate one segmentation network per input (visible, infrared, fused): IoU per class, mIoU",
        description="For each input (visible, infrared, each fused method) train the same torchvision segmentation "
        "network with the same schedule and seed on the train split's class-index masks and score it on the test "
        "split: IoU and accuracy per class, mIoU (one confusion matrix over the test pixels, 255 ignored), mean and "
        "spread over the seeds. Needs pip install 'ivfuse[segment]' (torchvision). Runs offline: the network starts "
        "from random weights or from --weights.",
    )
    _common(g, "ir/, vi/ and labels/, masks/ or Segmentation_labels/ of class-index images",
            "the network input's longer side", 8)
    g.add_argument("--arch", default=ARCHS[0], choices=ARCHS, help=f"torchvision network (default {ARCHS[0]})")
    g.add_argument("--weights", default=None,
                   help="start from this state dict (.safetensors, or .pt/.pth read with weights_only); tensors whose "
                        "name or shape differ (e.g. another class count) keep their random start")
    g.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate, poly decay (default 1e-3)")
    g.add_argument("--num-classes", type=int, default=None, metavar="N",
                   help="classes (default: from --classes or classes.txt, else the largest id in the masks + 1)")
    g.add_argument("--classes", default=None, metavar="A,B,...",
                   help="class names in id order (default: classes.txt of the train masks, else 0, 1, ...)")
    g.add_argument("--save-weights", action="store_true",
                   help="also write each trained network to OUT/runs/NAME/seedK.safetensors")
    _tail(g)
    g.set_defaults(func=_cmd_segment)


def _common(p, layout: str, size_help: str, batch: int) -> None:
    p.add_argument("--train", required=True, help=f"train dataset folder ({layout})")
    p.add_argument("--test", required=True, help="test dataset folder (the same layout)")
    p.add_argument("--fused", action="append", default=[], metavar="NAME=DIR|MODEL",
                   help="a fused input: a folder of fused images (with train/ and test/ subfolders, or both splits in "
                        "one folder) or an ivfuse model fused on the fly into OUT/fused/NAME; repeat for several")
    p.add_argument("--sources", default="vis,ir", help="source inputs to compare with: vis, ir, both (default) or ''")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--imgsz", type=int, default=320, help=f"{size_help}, a multiple of 32 (default 320)")
    p.add_argument("--batch", type=int, default=batch, help=f"batch size (default {batch})")
    p.add_argument("--seeds", type=parse_seeds, default="1", metavar="K|A-B|A,B,...",
                   help="train with seeds 0..K-1 (default 1), the range A..B or the listed seeds (to split the seeds "
                        "of one table over several processes, each with its own -o, then gather the seed*.json files "
                        "in one folder and rerun with --resume)")


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: ``K`` is seeds 0..K-1, ``A-B`` the seeds A..B, ``A,B,...`` the seeds listed.

    >>> parse_seeds("3"), parse_seeds("2-3"), parse_seeds("0,2")
    ([0, 1, 2], [2, 3], [0, 2])
    """
    t = text.strip()
    try:
        if "," in t:
            seeds = [int(x) for x in t.split(",") if x.strip()]
        elif "-" in t:
            a, b = (int(x) for x in t.split("-", 1))
            seeds = list(range(a, b + 1))
        else:
            seeds = list(range(int(t)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K, A-B or A,B,... of whole numbers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"needs at least one seed, none negative or repeated, got {text!r}")
    return seeds


def _tail(p) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--resume", action="store_true",
                   help="keep runs (and fused images) a previous call with the same settings finished")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", default="auto", metavar="N|auto",
                   help="CPU threads (default auto: the cores not busy now, from the load average)")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


def _inputs(args) -> list:
    from .inputs import parse_fused, parse_sources

    return parse_sources(args.sources) + [parse_fused(s) for s in args.fused]


def _finish(res, metrics: dict) -> int:
    from .report import table_markdown

    print(table_markdown(res.table, metrics=metrics), end="")
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {', '.join(str(p) for p in res.files)}")
    return 1 if res.left_out else 0


def _cmd_detect(args) -> int:
    import torch

    from .detect import DetectSettings, run_detection
    from .report import METRICS

    inputs = _inputs(args)
    settings = DetectSettings(model_yaml=args.model_yaml, weights=args.weights, epochs=args.epochs, imgsz=args.imgsz,
                              batch=args.batch, device=args.device, threads=torch.get_num_threads())
    res = run_detection(args.train, args.test, inputs, args.output, settings, seeds=args.seeds,
                        names=_names(args.classes), resume=args.resume, progress=not args.quiet)
    return _finish(res, METRICS)


def _cmd_segment(args) -> int:
    import torch

    from .report import SEGMENT_METRICS
    from .segment import SegmentSettings, run_segmentation

    inputs = _inputs(args)
    settings = SegmentSettings(arch=args.arch, weights=args.weights, epochs=args.epochs, imgsz=args.imgsz,
                               batch=args.batch, lr=args.lr, device=args.device, threads=torch.get_num_threads())
    res = run_segmentation(args.train, args.test, inputs, args.output, settings, seeds=args.seeds,
                           names=_names(args.classes), num_classes=args.num_classes, resume=args.resume,
                           progress=not args.quiet, save_weights=args.save_weights)
    return _finish(res, SEGMENT_METRICS)
