"""Two CPU processes on gloo: DDP keeps the parameters identical across ranks, and they train."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))  # spawned workers import train_helpers

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    import os

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_helpers import small_config

    from ivfuse.train.loop import train

    torch.set_num_threads(1)
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        cfg = small_config(data, steps=4, lr=1e-2, device="cpu", checkpoint_every=2)
        cfg.seed = 11
        res = train(cfg, Path(out) / "run", progress=False)
        state = {k: v.detach().clone().contiguous() for k, v in res.model.state_dict().items()}
        save_file(state, str(Path(out) / f"rank{rank}.safetensors"))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_keeps_ranks_identical(pair_dir, tmp_path):
    from train_helpers import small_config

    from ivfuse.models import create_model

    mp.spawn(_worker, args=(2, _free_port(), str(pair_dir), str(tmp_path)), nprocs=2, join=True)
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    cfg = small_config(pair_dir, seed=11)
    torch.manual_seed(11)
    init = create_model("tiny_cnn", **cfg.model_kwargs).state_dict()
    assert any(not torch.equal(init[k], r0[k]) for k in r0)  # and they did train
    run = tmp_path / "run"
    assert (run / "tiny_cnn.safetensors").is_file() and (run / "checkpoints" / "step_00000004").is_dir()
    assert load_file(str(run / "tiny_cnn.safetensors")).keys() == r0.keys()  # rank 0 exported
    import json

    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2 and info["steps_per_epoch"] == 2  # 6 pairs / (2 per step x 2 ranks)
