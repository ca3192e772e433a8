"""``ivfuse export``: write a model as ONNX (dynamic batch, height and width) with a JSON card beside it."""

from __future__ import annotations

__all__ = ["add_parser"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX for onnxruntime (--backend onnxruntime)",
        description="Export a registered model to ONNX with dynamic batch, height and width. Height and width must be "
        "multiples of the model's pad multiple (padding is done outside the graph; the card M.json beside M.onnx "
        "says which multiple and the opset).",
    )
    p.add_argument("--model", default=None, help="registered model name (default: the default model)")
    p.add_argument("--checkpoint", default=None, help="safetensors weights for --model instead of the shipped ones")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write (its card goes beside it as .json)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default 17)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args) -> int:
    from . import api
    from .cli import check_model_choice
    from .export import DEFAULT_OPSET, export_onnx

    model = args.model or api.DEFAULT_MODEL
    check_model_choice(model, args.checkpoint)
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    if not 7 <= opset <= 25:
        raise ValueError(f"--opset must be between 7 and 25, got {opset}")
    onnx_path, card = export_onnx(model, args.output, opset=opset, checkpoint_path=args.checkpoint,
                                  overwrite=args.overwrite)
    print(f"wrote {onnx_path} ('{model}', opset {opset}) and its card {card}")
    return 0
