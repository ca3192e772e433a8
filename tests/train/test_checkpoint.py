"""Checkpoints: optimizer and RNG state through safetensors + JSON, atomic folders, pruning."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from ivfuse.train.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint_dir,
    optimizer_state_from_flat,
    optimizer_state_to_flat,
    rng_state_to_flat,
    save_checkpoint,
    set_rng_state_from_flat,
)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Conv2d(3, 1, 1))


def _steps(net, opt, n, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        opt.zero_grad()
        net(torch.rand(2, 1, 8, 8, generator=g)).pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99)),
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1, amsgrad=True),
    lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, nesterov=True, weight_decay=1e-4),
], ids=["adam", "adamw", "sgd"])
def test_optimizer_round_trip_continues_identically(make):
    a = _net()
    opt_a = make(a.parameters())
    _steps(a, opt_a, 3, seed=1)
    tensors, meta = optimizer_state_to_flat(opt_a.state_dict())
    meta = json.loads(json.dumps(meta))  # what actually goes to disk
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())

    b = _net()
    b.load_state_dict(a.state_dict())
    opt_b = make(b.parameters())
    opt_b.load_state_dict(optimizer_state_from_flat(tensors, meta))
    assert opt_b.state_dict()["param_groups"] == opt_a.state_dict()["param_groups"]
    _steps(a, opt_a, 2, seed=2)
    _steps(b, opt_b, 2, seed=2)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_rng_round_trip():
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    tensors, meta = rng_state_to_flat()
    meta = json.loads(json.dumps(meta))
    first = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    set_rng_state_from_flat(tensors, meta)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_save_load_prune_latest(tmp_path):
    net = _net()
    opt = torch.optim.Adam(net.parameters())
    _steps(net, opt, 1, seed=0)
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, net, opt, {"stage_index": 0}, keep=2, pinned=(step == 20))
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step_00000020", "step_00000030", "step_00000040"]  # pinned 20 survives pruning
    assert latest_checkpoint(tmp_path).name == "step_00000040"
    files = {p.name for p in (tmp_path / "checkpoints" / "step_00000040").iterdir()}
    assert files == {"model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"}
    assert not list((tmp_path / "checkpoints").glob(".*"))  # no temporary leftovers
    ck = load_checkpoint_dir(latest_checkpoint(tmp_path))
    assert ck["state"]["step"] == 40 and ck["state"]["stage_index"] == 0
    for k, v in net.state_dict().items():
        assert torch.equal(ck["model"][k], v)
    (tmp_path / "checkpoints" / "latest").write_text("step_00000099\n")  # dangling pointer: fall back to scan
    assert latest_checkpoint(tmp_path).name == "step_00000040"
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_incomplete_checkpoint_is_ignored(tmp_path):
    net = _net()
    save_checkpoint(tmp_path, 1, net, None, {})
    (tmp_path / "checkpoints" / "step_00000002").mkdir()  # a kill mid-write would leave no state.json
    assert latest_checkpoint(tmp_path).name == "step_00000001"
    assert load_checkpoint_dir(latest_checkpoint(tmp_path))["optimizer"] is None
