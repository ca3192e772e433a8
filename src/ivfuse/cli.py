"""The ``ivfuse`` command line: thin wrappers that parse, call the API and print.

Exit codes: 0 success; 1 some pairs failed, something could not be scored, or the input was
unusable; 2 bad usage; 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Errors a user can cause
are one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser", "check_model_choice"]


def _err(msg: str) -> None:
    print(f"ivfuse: error: {msg}", file=sys.stderr)


def _add_fuse(sub) -> None:
    p = sub.add_parser(
        "fuse",
        help="fuse a pair or every pair of a dataset folder",
        description="Fuse an infrared/visible pair (--ir A --vis B -o out.png) or every pair in a dataset folder "
        "(DATASET_DIR -o OUT_DIR, or --ir DIR --vis DIR -o OUT_DIR).",
    )
    p.add_argument("dataset", nargs="?", help="dataset folder with ir/vi, IR/VI, Inf/Vis, MRI/PET, ... subfolders")
    p.add_argument("--ir", help="infrared (or MRI) image, or folder of them")
    p.add_argument("--vis", help="visible (or CT/PET/SPECT) image, or folder of them")
    p.add_argument("-o", "--output", required=True, help="output image (single pair) or folder (dataset)")
    p.add_argument("--model", default=None, help="registered model name (see `ivfuse models`)")
    p.add_argument("--checkpoint", default=None, help="safetensors weights for --model instead of the shipped ones")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a constructor argument of --model over the ones its weights come with, e.g. "
                        "contrast_ratio=0 or detail_gain=1 for fusionnet_cpu (VALUE read as a TOML literal, as "
                        "ivfuse train --set reads it; repeatable; PyTorch backend)")
    p.add_argument("--resize", action="store_true", help="resample infrared onto the visible grid if sizes differ")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="bits per sample of the output")
    p.add_argument("--ext", default=".png", help="output extension in folder mode (default .png)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    p.add_argument("--batch-size", type=int, default=1, help="pairs of equal size fused together (at least 1)")
    p.add_argument("--save-maps", action="store_true", help="also write the model's attention/alpha/foreground maps")
    p.add_argument("--tile", default="auto",
                   help="tile side in pixels for large images, 0 for none, 'auto' (default) to decide from free memory")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that exist (never an input)")
    existing.add_argument("--skip-existing", action="store_true",
                          help="keep outputs that exist and fuse the rest, exit 0 (resume an interrupted run); "
                               "without it existing outputs are also kept, with a message and exit code 1")
    p.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime"),
                   help="run the network in PyTorch or, exported in memory (or --model FILE.onnx), in onnxruntime; "
                        "auto (default): onnxruntime for a folder on the CPU when it is installed and the model "
                        "exports (about 2.5x faster for fusionnet_cpu), PyTorch otherwise and for one pair")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="folder mode: fuse only the sorted pairs [I::N] (default: RANK/WORLD_SIZE under torchrun)")
    p.add_argument("--register", nargs="?", const="homography", default=None,
                   choices=("homography", "flow", "both"), metavar="METHOD",
                   help="register the infrared onto the visible grid before fusing (homography if no METHOD; "
                        "flow or both add a dense residual; needs pip install 'ivfuse[cv]')")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fuse)


def _tile_arg(value: str):
    if value == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"--tile must be 'auto' or a number of pixels, got '{value}'") from None
    if n < 0 or 0 < n < 32:
        raise ValueError(f"--tile must be 0 (off) or at least 32 pixels, got {n}")
    return n or None


def check_model_choice(name: str, checkpoint: str | None, checkpoint_option: bool = True) -> None:
    """Fail before any work for an unknown model, or a network without weights and no --checkpoint."""
    from .models import get_model_entry, list_models

    entry = get_model_entry(name)
    if checkpoint is None and entry.trainable and entry.weights_status() != "available":
        have = [n for n in list_models(pretrained=True) if get_model_entry(n).trainable]
        how = (f"train it (ivfuse train --model {name} ...) and pass --checkpoint FILE.safetensors, or "
               if checkpoint_option else "")
        raise ValueError(f"--model {name}: no weights ship for this model; {how}pick one with weights: "
                         f"{', '.join(have) or 'none'}")


def parse_model_args(specs: Sequence[str]) -> dict:
    """``["KEY=VALUE", ...]`` -> constructor arguments; VALUE as ``ivfuse train --set`` reads it (a TOML
    literal: ``1.2``, ``true``, ``[8, 16]``), else as text."""
    from .train.config import parse_value

    out: dict = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-arg takes KEY=VALUE with KEY an argument name, got {spec!r}")
        out[key] = parse_value(text.strip())
    return out


def _model_with_args(name: str, checkpoint: str | None, specs: Sequence[str]):
    """``name`` built with its weights' arguments (the card's, or the checkpoint's) and ``--model-arg`` over them."""
    from .models.registry import checkpoint_model_kwargs, create_model

    kwargs = parse_model_args(specs)
    if checkpoint:
        kwargs = {**checkpoint_model_kwargs(checkpoint, name), **kwargs}
    try:
        return create_model(name, pretrained=None if checkpoint else True, checkpoint_path=checkpoint, **kwargs)
    except TypeError as exc:  # an argument the constructor does not take
        raise ValueError(f"--model-arg: model '{name}' does not take {sorted(kwargs)} ({exc})") from exc


def _cmd_fuse(args) -> int:
    from . import api
    from ._allocator import keep_freed_memory
    from .infer import select_device
    from .shard import parse_shard

    keep_freed_memory()  # pair after pair: reuse freed memory (about a fifth of a 640x480 CPU forward pass)
    tile = _tile_arg(args.tile)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    model = args.model or api.DEFAULT_MODEL
    onnx_file = model.lower().endswith(".onnx")
    if not onnx_file:
        check_model_choice(model, args.checkpoint)
    select_device(args.device)  # an unknown or absent device is refused before any work
    folder_mode = (args.dataset is not None or (args.ir and Path(args.ir).is_dir())
                   or (args.vis and Path(args.vis).is_dir()))
    backend = args.backend
    if onnx_file:
        backend = "onnxruntime"
    elif backend == "auto":
        # PyTorch: with channels-last weights and the FFT blur it is faster than onnxruntime on the CPU for
        # every network that exports (docs/export.md); onnxruntime on request or for an .onnx file.
        backend = "torch"
    name = model
    if args.model_arg:
        if backend != "torch":
            raise ValueError("--model-arg needs --backend torch (an ONNX graph is exported with its arguments)")
        model = _model_with_args(model, args.checkpoint, args.model_arg)
        args.checkpoint = None  # applied
        name = f"{name} with " + ", ".join(args.model_arg)
    if backend != "torch":
        from .export import OnnxModel, load_model

        if backend == "onnxruntime":
            if args.dtype != "float32":
                raise ValueError(f"--dtype {args.dtype} needs --backend torch (onnxruntime runs float32)")
            if args.save_maps:
                raise ValueError("--save-maps needs --backend torch (the ONNX graph returns the fused image only)")
        model = load_model(model, backend=backend, checkpoint_path=args.checkpoint)
        args.checkpoint = None  # applied by load_model
        if isinstance(model, OnnxModel):
            name = f"{name}, onnxruntime"
    if folder_mode:
        if args.dataset is None and not (args.ir and args.vis):
            _err("folder mode needs DATASET_DIR or both --ir DIR and --vis DIR")
            return 2
        if args.dataset is not None and (args.ir or args.vis):
            _err("give either DATASET_DIR or --ir/--vis, not both")
            return 2
        res = api.fuse_folder(
            args.dataset, args.output, model,
            ir_dir=args.ir, vis_dir=args.vis, ext=args.ext, resize=args.resize, bit_depth=args.bit_depth,
            device=args.device, dtype=args.dtype, checkpoint_path=args.checkpoint, save_maps=args.save_maps,
            batch_size=args.batch_size, progress=not args.quiet, tile=tile, overwrite=args.overwrite,
            shard=parse_shard(args.shard), register=args.register or False,
        )
        print(f"fused {len(res.written)} pairs with '{name}' into {args.output}")
        code = 0
        if res.skipped:
            if args.skip_existing:
                print(f"{len(res.skipped)} pairs already fused there, kept (--skip-existing)")
            else:
                code = 1
                print(f"{len(res.skipped)} outputs exist and were kept, not replaced (--overwrite replaces them, "
                      "--skip-existing keeps them quietly):", file=sys.stderr)
                for p in res.skipped[:10]:
                    print(f"  {p}", file=sys.stderr)
                if len(res.skipped) > 10:
                    print(f"  ... and {len(res.skipped) - 10} more", file=sys.stderr)
        if res.unmatched:
            print(f"{len(res.unmatched)} files without a partner (not fused):")
            for p in res.unmatched:
                print(f"  {p}")
        if res.failed:
            print(f"{len(res.failed)} pairs failed:", file=sys.stderr)
            for name, msg in res.failed:
                print(f"  {name}: {msg}", file=sys.stderr)
            code = 1
        return code
    if not (args.ir and args.vis):
        _err("give --ir and --vis images (or a dataset folder)")
        return 2
    if args.shard is not None:
        _err("--shard splits a dataset folder; give DATASET_DIR or --ir DIR --vis DIR")
        return 2
    try:
        api.check_fuse_output(args.output, (args.ir, args.vis), bit_depth=args.bit_depth, overwrite=args.overwrite)
    except FileExistsError:
        if args.skip_existing:
            print(f"{args.output} exists, kept (--skip-existing)")
            return 0
        _err(f"'{args.output}' exists and was kept; pass --overwrite to replace it")
        return 1
    api.fuse(
        args.ir, args.vis, model, output=args.output, resize=args.resize, bit_depth=args.bit_depth,
        device=args.device, dtype=args.dtype, checkpoint_path=args.checkpoint, save_maps=args.save_maps, tile=tile,
        overwrite=args.overwrite, register=args.register or False,
    )
    print(f"wrote {args.output} ({name})")
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list registered models, their weights and sizes")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'pomai*'")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args) -> int:
    from . import api
    from .models import count_parameters, get_model_entry, list_models

    names = list_models(args.pattern)
    if not names:
        _err(f"no model matches '{args.pattern}'")
        return 1
    rows = []
    for n in names:
        e = get_model_entry(n)
        params = count_parameters(e.fn())
        mark = "*" if n == api.DEFAULT_MODEL else ""
        rows.append((n + mark, e.weights_status(), f"{params:,}", e.description))
    head = ("model", "weights", "params", "description")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths + [0])))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths + [0])))
    print(f"* default model ({api.DEFAULT_MODEL})")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="fuse a synthetic pair; needs no data")
    p.add_argument("-o", "--output", default="ivfuse-demo", help="folder for demo_ir.png, demo_vis.png, demo_fused.png")
    p.add_argument("--model", default=None, help="registered model name (default: the default model)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from . import api
    from .demo import make_demo_pair
    from .io import write_image

    model = args.model or api.DEFAULT_MODEL
    check_model_choice(model, None, checkpoint_option=False)
    ir, vis, _ = make_demo_pair()
    out = Path(args.output)
    fused = api.fuse(ir, vis, model, device=args.device)
    paths = [write_image(out / "demo_ir.png", ir), write_image(out / "demo_vis.png", vis),
             write_image(out / "demo_fused.png", fused)]
    print(f"fused the synthetic pair with '{model}':")
    for p in paths:
        print(f"  {p}")
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="score fused images with the field's metrics; compare several methods",
        description="Score fused images against their sources. Give a dataset folder (or --ir/--vis folders) and one "
        "or more --fused DIR or --fused NAME=DIR; writes per-image CSVs and a comparison table "
        "(Markdown, CSV, JSON, LaTeX). Methods are compared on the images all of them have; exits 1 when a fused "
        "image or a metric value could not be scored (listed on stderr, left-out images noted in the table).",
    )
    p.add_argument("dataset", nargs="?", help="dataset folder with infrared/visible subfolders")
    p.add_argument("--ir", help="folder of infrared (or MRI) images")
    p.add_argument("--vis", help="folder of visible (or CT/PET/SPECT) images")
    p.add_argument("--fused", action="append", metavar="[NAME=]DIR",
                   help="folder of fused images, matched by file stem; repeat for several methods")
    p.add_argument("--foreground", action="append", metavar="MODEL[=FILE]|pseudo",
                   help="instead of --fused: IoU and F1 of the model's foreground map (p > 0.5) against the boxes "
                        "or masks of --roi (default: the dataset's own labels); 'pseudo' scores the infrared "
                        "pseudo-ROIs; repeat for several")
    p.add_argument("--device", default="auto", help="device for --foreground models: auto, cpu, cuda, cuda:N")
    p.add_argument("--template", default="{name}", help="fused file stem pattern, e.g. '{name}_ADF' (default '{name}')")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: the convention's table)")
    p.add_argument("--convention", default=None,
                   help="vifb (default), cddfuse or tang; several, comma-separated, give one table each")
    p.add_argument("--roi", default=None, metavar="PATH|pseudo",
                   help="regions for ROI-SSIM (added to the metrics): a folder of YOLO .txt or VOC .xml boxes, a COCO "
                        ".json, a folder of masks, or 'pseudo' for the infrared pseudo-ROIs")
    p.add_argument("-o", "--output", default=None, help="folder for per-image CSVs and summary.{md,csv,json,tex}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args) -> int:
    from ._allocator import keep_freed_memory
    from .evaluation import check_output_dir, compare_methods, describe_unscored, find_fused, roi_source, table_markdown
    from .io import find_pairs
    from .metrics import DEFAULT_CONVENTION
    from .metrics.conventions import check_convention
    from .metrics.registry import resolve_metric

    keep_freed_memory()  # scoring image after image: reuse freed memory instead of faulting it in again
    # Every option is checked before the first image is read, so a long run cannot fail at its end.
    conventions = [check_convention(c.strip()) for c in (args.convention or DEFAULT_CONVENTION).split(",") if c.strip()]
    if not conventions:
        raise ValueError("--convention: no convention named (vifb, cddfuse or tang)")
    chosen = [resolve_metric(m.strip()) for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    if chosen is not None and "ROI-SSIM" in chosen and args.roi is None:
        _err("ROI-SSIM needs regions: add --roi with a box or mask folder, a COCO .json, or 'pseudo'")
        return 2
    if args.dataset is None and not (args.ir and args.vis):
        _err("give a dataset folder or both --ir DIR and --vis DIR")
        return 2
    if bool(args.fused) == bool(args.foreground):
        _err("give --fused DIR (score fused images) or --foreground MODEL (score a foreground map), not both")
        return 2
    if args.foreground:  # each model's thresholded foreground map against the reference regions
        from . import data
        from .evaluation import foreground_markdown, foreground_predictor, score_foreground, write_foreground

        if args.metrics or args.convention:
            _err("--metrics and --convention score fused images; --foreground takes neither")
            return 2
        scan = find_pairs(args.dataset, ir_dir=args.ir, vis_dir=args.vis)
        if not scan.pairs:
            raise ValueError(f"no infrared/visible pairs found in '{scan.ir_dir}' and '{scan.vis_dir}'")
        spec = args.roi
        if spec is None:
            found = data.find_label_sources(args.dataset) if args.dataset else data.LabelSources()
            spec = found.mask_dir or found.box_path
            if spec is None:
                raise ValueError("--foreground needs reference regions: the dataset folder has no labels/ or masks/; "
                                 "give --roi with a box or mask folder or a COCO .json")
        truth = roi_source(spec)
        if args.output is not None:
            check_output_dir(args.output)
        predictors = [foreground_predictor(s, args.device) for s in args.foreground]  # every model checked first
        results = [score_foreground(p, scan.pairs, truth, progress=not args.quiet) for p in predictors]
        title = f"{len(scan.pairs)} pairs, foreground against {spec}"
        print(foreground_markdown(results, title))
        if args.output is not None:
            print("wrote " + ", ".join(str(p) for p in write_foreground(results, args.output, title)))
        problems = [(r.name, image, why) for r in results for image, why in r.problems]
        if problems:
            print(f"{len(problems)} pairs could not be scored:", file=sys.stderr)
            for name, image, why in problems:
                print(f"  {name}/{image}: {why}", file=sys.stderr)
            return 1
        return 0
    folders = {}
    for spec in args.fused:
        name, _, folder = spec.rpartition("=")
        name = name or Path(folder).name
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"'{folder}': fused image folder not found")
        if name in folders:
            raise ValueError(f"two --fused folders are named '{name}'; give them names: --fused NAME=DIR")
        folders[name] = folder
    roi = roi_source(args.roi) if args.roi is not None else None
    if args.output is not None:
        check_output_dir(args.output)
    scan = find_pairs(args.dataset, ir_dir=args.ir, vis_dir=args.vis)
    if not scan.pairs:
        raise ValueError(f"no infrared/visible pairs found in '{scan.ir_dir}' and '{scan.vis_dir}'")
    names = [p.name for p in scan.pairs]
    fused = {name: find_fused(folder, names, args.template) for name, folder in folders.items()}
    results = compare_methods(fused, scan.pairs, conventions, chosen, roi=roi, out_dir=args.output,
                              progress=not args.quiet)
    unscored = {}
    for result in results:
        print(table_markdown(result.table, result.title))
        if result.written:
            print("wrote " + ", ".join(str(p) for p in result.written))
        for u in result.unscored:
            unscored.setdefault((u.method, u.image, u.metric), u)  # the same image fails under every convention
    if unscored:
        print(describe_unscored(list(unscored.values())), file=sys.stderr)
        return 1
    return 0


#: Commands whose own ``--threads`` means something else (bench: the speed table's threads) or
#: is part of a saved configuration (train); the others get the common option.
_OWN_THREADS = ("train", "bench")


def _add_common(p: argparse.ArgumentParser, command: str) -> None:
    have = {s for a in p._actions for s in a.option_strings}
    if "--threads" not in have and command not in _OWN_THREADS:
        p.add_argument("--threads", default="auto", metavar="N|auto",
                       help="CPU threads (default auto: the cores not busy now, from the load average)")
    if "--debug" not in have:
        p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


#: Modules that add one subcommand each through ``add_parser(subparsers)``; a module that is not part
#: of this build is left out.
_COMMAND_MODULES = (
    "ivfuse.train.cli",
    "ivfuse.bench_cli",
    "ivfuse.register_cli",
    "ivfuse.video_cli",
    "ivfuse.export_cli",
    "ivfuse.analysis_cli",
    "ivfuse.downstream.cli",
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="ivfuse", description="Infrared-visible and medical image fusion.")
    parser.add_argument("--version", action="version", version=f"ivfuse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_fuse(sub)
    _add_models(sub)
    _add_demo(sub)
    _add_eval(sub)
    for modname in _COMMAND_MODULES:
        try:
            mod = __import__(modname, fromlist=["add_parser"])
        except ModuleNotFoundError as exc:
            if exc.name and modname.startswith(exc.name):
                continue  # that command is not part of this build
            raise
        mod.add_parser(sub)
    for name, p in sub.choices.items():
        _add_common(p, name)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every cleanup (partial files) runs as for Ctrl-C."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised in a subprocess test
    raise Terminated()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"'{exc.filename}': {exc.strerror}"
    return " ".join((str(exc) or type(exc).__name__).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        from .threads import parse_threads, set_threads

        set_threads(parse_threads(getattr(args, "threads", None) if args.command not in _OWN_THREADS else None))
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Terminated:
        _err("terminated")
        return 143
    except Exception as exc:
        if debug:
            raise
        known = (ValueError, OSError, TypeError, LookupError)
        kind = "" if isinstance(exc, known) else f"{type(exc).__name__}: "
        _err(kind + _one_line(exc) + ("" if isinstance(exc, known) else " (--debug shows the traceback)"))
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
