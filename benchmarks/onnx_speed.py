"""ONNX parity and speed against PyTorch: max |onnxruntime - torch| on a 640x480 pair and forward times.

    python benchmarks/onnx_speed.py [--models fusionnet_cpu,tiny_cnn,...] [--threads 2] [--repeat 9]
                                    [--out benchmarks/results/onnx.json]

Each model is exported in memory (``ivfuse.export.onnx_bytes``), both backends get the same
number of intra-op threads, and their runs alternate (torch, onnxruntime, torch, ...) so that
whatever else the machine is doing slows both alike. The median of ``--repeat`` runs after two
warm-up runs is recorded, with the 1-minute load average before and after: on a shared machine
the times are only comparable within one run of this script. Models without shipped weights
run with seeded random weights (parity does not depend on them). Models that cannot export are
listed with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def _load(name: str):
    from ivfuse.export import load_model
    from ivfuse.models import create_model, get_model_entry

    e = get_model_entry(name)
    if not e.trainable or e.weights_status() == "available":
        return load_model(name), "shipped" if e.trainable else "none (classical)"
    torch.manual_seed(0)
    return create_model(name, pretrained=False).eval(), "random (seed 0)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fusionnet_cpu,fusionnet,tiny_cnn,average,max,dwt,gff,laplacian,pomai_cpu,"
                                        "fgfusion_cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--size", default="640x480", help="WxH")
    ap.add_argument("--out", default="benchmarks/results/onnx.json")
    args = ap.parse_args()

    import onnxruntime as ort

    from ivfuse._allocator import keep_freed_memory
    from ivfuse.export import DEFAULT_OPSET, ExportError, OnnxModel, onnx_bytes
    from ivfuse.infer import run_model
    from ivfuse.timing import measure_latency

    keep_freed_memory()  # as `ivfuse fuse` runs

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    g = torch.Generator().manual_seed(0)
    ir = torch.rand(1, 1, h, w, generator=g)
    vis = torch.nn.functional.avg_pool2d(torch.rand(1, 1, h, w, generator=g), 5, 1, 2)
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        net, weights = _load(name)
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        try:
            data, card = onnx_bytes(net, name=name)
        except ExportError as exc:
            rows.append({"model": name, "exports": False, "reason": str(exc)})
            print(f"{name}: {exc}", flush=True)
            continue
        export_s = time.perf_counter() - t
        onnx_model = OnnxModel(data, threads=args.threads)
        # The one latency timer (ivfuse.timing): 2 untimed calls, then `repeat` timed ones per backend.
        outs, med = {}, {}
        for backend, m in (("torch", net), ("onnxruntime", onnx_model)):
            outs[backend] = run_model(m, ir, vis, device="cpu", tile=None)
            med[backend] = measure_latency(lambda m=m: run_model(m, ir, vis, device="cpu", tile=None),
                                           warmup=1, repeat=args.repeat).median_s
        diff = float((outs["torch"] - outs["onnxruntime"]).abs().max())
        row = {"model": name, "exports": True, "weights": weights, "size": f"{w}x{h}", "threads": args.threads,
               "opset": DEFAULT_OPSET, "onnx_mb": round(len(data) / 2**20, 3), "export_s": round(export_s, 2),
               "max_abs_diff": diff, "torch_s": round(med["torch"], 4), "onnxruntime_s": round(med["onnxruntime"], 4),
               "speedup": round(med["torch"] / med["onnxruntime"], 2),
               "load_1min_before": round(load0, 2), "load_1min_after": round(os.getloadavg()[0], 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"torch": torch.__version__, "onnxruntime": ort.__version__, "cores": os.cpu_count(),
              "repeat": args.repeat, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
