"""How many CPU threads should a command use? Forward time of a 640x480 pair by thread count,
on the machine as it is and with an extra busy process occupying one core.

    python benchmarks/threads.py [--model fusionnet_cpu] [--repeat 7] [--out benchmarks/results/threads.json]

Each setting runs in a fresh process (torch fixes its thread pool at the first operator). The
load average and the count ``ivfuse.threads.auto_threads`` picks are recorded beside the times.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path


def _busy(stop) -> None:  # one core kept busy, as another job would
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _time(model: str, threads: int, repeat: int) -> float:
    """Median forward seconds of a 640x480 pair, measured by ``python -m ivfuse.bench_speed`` in a fresh process."""
    cmd = [sys.executable, "-m", "ivfuse.bench_speed", model, "480", "640", str(threads), "2", str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["latency_s"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fusionnet_cpu")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--out", default="benchmarks/results/threads.json")
    args = ap.parse_args()
    from ivfuse.threads import auto_threads, usable_cores

    counts = [int(t) for t in args.threads.split(",")]
    rows = []
    for state in ("as is", "one core busy"):
        stop = mp.Event()
        busy = mp.Process(target=_busy, args=(stop,)) if state != "as is" else None
        if busy is not None:
            busy.start()
            time.sleep(3)
        try:
            for n in counts:
                load = os.getloadavg()[0]
                sec = _time(args.model, n, args.repeat)
                rows.append({"state": state, "threads": n, "seconds": round(sec, 4), "load_1min": round(load, 2),
                             "auto_threads": auto_threads()})
                print(f"{state:14s} threads={n}  {sec:.3f} s  "
                      f"(load {load:.2f}, auto would pick {rows[-1]['auto_threads']})")
        finally:
            if busy is not None:
                stop.set()
                busy.join()
    result = {"model": args.model, "size": "640x480", "cores": usable_cores(), "repeat": args.repeat, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
