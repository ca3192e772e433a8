"""The speed table of ``ivfuse bench``: each model measured in a fresh process.

:func:`speed_row` runs ``python -m ivfuse.bench_speed MODEL H W THREADS WARMUP REPEAT [CHECKPOINT]``,
whose :func:`main` calls :func:`measure_speed` and prints one JSON line; a fresh process makes the
peak memory the model's own. The latency is :func:`ivfuse.timing.measure_latency`'s median, in a
process set up as ``ivfuse fuse`` sets up its own (:func:`ivfuse._allocator.keep_freed_memory`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

from .report import markdown_rows

__all__ = ["SPEED_COLUMNS", "measure_speed", "speed_csv", "speed_markdown", "speed_row"]

#: The keys of a speed row, in table order.
SPEED_COLUMNS = ("model", "params", "gflops", "latency_s", "peak_mb", "peak_over_idle_mb")


def _rss(field: str) -> int:
    """Bytes of the ``/proc/self/status`` memory line ``field`` (e.g. "VmHWM:"), 0 where there is none."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure_speed(model: str, height: int = 480, width: int = 640, threads: int = 2, warmup: int = 2,
                  repeat: int = 5, checkpoint: str | os.PathLike | None = None) -> dict:
    """Measure one model in this process (run it in a fresh one, as :func:`speed_row` does).

    Returns:
        {"params", "gflops" (at 640x480), "latency_s" (median wall seconds of an untiled
        (1, 1, height, width) pair after ``warmup`` runs), "peak_mb" (peak resident memory of the
        process), "peak_over_idle_mb" (peak minus the memory before the first forward pass)}.
    """
    import torch

    from ._allocator import keep_freed_memory

    keep_freed_memory()  # as ``ivfuse fuse`` does: the latency is the one a user of the command sees
    torch.set_num_threads(threads)
    from .infer import run_model
    from .models import count_parameters, create_model, get_model_entry
    from .models.profile import count_gflops
    from .timing import measure_latency

    entry = get_model_entry(model)
    if checkpoint:
        net = create_model(model, pretrained=False, checkpoint_path=checkpoint)
    else:
        net = create_model(model, pretrained=entry.trainable and entry.weights_status() == "available")
    g = torch.Generator().manual_seed(0)
    ir, vis = torch.rand(1, 1, height, width, generator=g), torch.rand(1, 1, height, width, generator=g)
    idle = _rss("VmRSS:")
    latency = measure_latency(lambda: run_model(net, ir, vis, device="cpu", tile=None), warmup, repeat)
    peak = _rss("VmHWM:")
    return {"params": count_parameters(net), "gflops": count_gflops(net, 480, 640), "latency_s": latency.median_s,
            "peak_mb": peak / 2**20, "peak_over_idle_mb": (peak - idle) / 2**20}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ivfuse.bench_speed MODEL H W THREADS WARMUP REPEAT [CHECKPOINT]``: one JSON line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (6, 7):
        print("usage: python -m ivfuse.bench_speed MODEL H W THREADS WARMUP REPEAT [CHECKPOINT]", file=sys.stderr)
        return 2
    name, *numbers = args[:6]
    h, w, threads, warmup, repeat = (int(x) for x in numbers)
    row = measure_speed(name, h, w, threads, warmup, repeat, args[6] if len(args) == 7 else None)
    print(json.dumps(row))
    return 0


def speed_row(model: str, height: int = 480, width: int = 640, threads: int = 2, warmup: int = 2,
              repeat: int = 5, checkpoint: str | os.PathLike | None = None) -> dict:
    """Measure one model in a fresh process (so peak memory is its own).

    ``checkpoint``: safetensors weights to load instead of the shipped ones (the timing does not
    depend on the weights, but the model measured is the one that fused).

    Returns:
        {"model", "params", "gflops" (at 640x480), "latency_s" (median per pair), "peak_mb"
        (peak resident memory of the process), "peak_over_idle_mb" (peak minus the memory before
        the first forward pass)}.
    """
    cmd = [sys.executable, "-m", "ivfuse.bench_speed", model, str(height), str(width), str(threads), str(warmup),
           str(repeat)] + ([str(checkpoint)] if checkpoint else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise RuntimeError(f"speed measurement of '{model}' failed: {last}")
    return {"model": model, **json.loads(proc.stdout.strip().splitlines()[-1])}


def speed_markdown(rows: Sequence[dict], height: int, width: int, threads: int) -> str:
    """The speed table in Markdown, with a line saying how each column was measured."""
    lines = [f"### Speed ({width}x{height} pair, CPU, {threads} threads)", ""]
    lines += markdown_rows(
        ["model", "params", "GFLOPs (640x480)", "median latency (s)", "peak memory (MB)", "over idle (MB)"],
        [[r["model"], f"{r['params']:,}", f"{r['gflops']:.2f}", f"{r['latency_s']:.3f}", f"{r['peak_mb']:.0f}",
          f"{r['peak_over_idle_mb']:.0f}"] for r in rows],
        "lrrrrr",
    )
    lines += ["", ("GFLOPs count convolutions and matrix products (multiply-add = 2). Latency: median over repeated "
                   "runs after warm-up, untiled, with freed memory kept for reuse as `ivfuse fuse` keeps it. "
                   "Memory: peak resident set of a fresh process.")]
    return "\n".join(lines) + "\n"


def speed_csv(rows: Sequence[dict]) -> str:
    """The speed table as CSV text (``\\n`` line ends)."""
    return ",".join(SPEED_COLUMNS) + "\n" + "".join(
        f"{r['model']},{r['params']},{r['gflops']:.4f},{r['latency_s']:.4f},{r['peak_mb']:.1f},"
        f"{r['peak_over_idle_mb']:.1f}\n" for r in rows)


if __name__ == "__main__":
    sys.exit(main())
