"""Stage mechanics: plans, schedules, parameter selection, freezing, eval modes, two-stage runs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from train_helpers import small_config

from ivfuse.models import create_model
from ivfuse.models.base import FusionModel
from ivfuse.train.config import OptimizerConfig, ScheduleConfig, Stage
from ivfuse.train.loop import train
from ivfuse.train.stages import apply_stage, lr_at, plan_stages, select_parameters


class BNNet(FusionModel):
    """encoder (conv + batch norm + dropout) -> head; records the encoder's mode at each call."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.5))
        self.head = nn.Conv2d(4, 1, 3, padding=1)
        self.modes: list[bool] = []
        self.stages: list[str] = []

    def set_stage(self, name):
        self.stages.append(name)

    def forward(self, ir, vis, return_maps=False):
        self.modes.append(self.encoder.training)
        fused = torch.sigmoid(self.head(self.encoder(torch.cat((ir, vis), 1))))
        return (fused, {}) if return_maps else fused


def test_plan_stages():
    plans = plan_stages([Stage("a", 3), Stage("b", 2, unit="epochs")], steps_per_epoch=5)
    assert [(p.start, p.end, p.steps_per_unit) for p in plans] == [(0, 3, 1), (3, 13, 5)]
    for bad in ([], [Stage("a", 0)], [Stage("a", 1, unit="hours")], [Stage("a"), Stage("a")]):
        with pytest.raises(ValueError):
            plan_stages(bad, 5)


def test_schedules():
    plan = plan_stages([Stage("a", 10, unit="epochs")], steps_per_epoch=4)[0]
    opt = OptimizerConfig(lr=1.0)
    step = ScheduleConfig("step", step_size=3, gamma=0.5)
    assert [lr_at(opt, step, s, plan) for s in (0, 11, 12, 23, 24)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    multi = ScheduleConfig("multistep", milestones=[2, 5], gamma=0.1)
    assert lr_at(opt, multi, 7, plan) == 1.0 and lr_at(opt, multi, 8, plan) == pytest.approx(0.1)
    assert lr_at(opt, multi, 20, plan) == pytest.approx(0.01)
    cos = ScheduleConfig("cosine", min_lr=0.1)
    assert lr_at(opt, cos, 0, plan) == 1.0 and lr_at(opt, cos, 20, plan) == pytest.approx(0.55)
    assert lr_at(opt, cos, 40, plan) == pytest.approx(0.1)
    warm = ScheduleConfig("constant", warmup=1)
    assert lr_at(opt, warm, 0, plan) == 0.25 and lr_at(opt, warm, 3, plan) == 1.0 and lr_at(opt, warm, 4, plan) == 1.0
    poly = ScheduleConfig("poly", power=2.0)
    assert lr_at(opt, poly, 20, plan) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at(opt, ScheduleConfig("exp"), 0, plan)
    assert all(math.isfinite(lr_at(opt, cos, s, plan)) for s in range(40))


def test_select_parameters():
    m = BNNet()
    assert all(n.startswith("head") for n in select_parameters(m, ["head"], []))
    assert not any(n.startswith("head") for n in select_parameters(m, ["*"], ["head"]))
    assert select_parameters(m, ["encoder.1"], []) == ["encoder.1.weight", "encoder.1.bias"]
    with pytest.raises(ValueError, match="matches no parameter.*encoder, head"):
        select_parameters(m, ["enc"], [])  # prefixes match whole module names, not substrings
    with pytest.raises(ValueError, match="trains no parameter"):
        select_parameters(m, ["head"], ["head"])


def test_apply_stage_freezes_and_sets_modes():
    m = BNNet()
    params = apply_stage(m, Stage("two", train=["head"]))
    assert m.stages == ["two"]
    assert {id(p) for p in params} == {id(p) for p in m.head.parameters()}
    assert not any(p.requires_grad for p in m.encoder.parameters())
    assert not m.encoder.training and not m.encoder[1].training and not m.encoder[2].training and m.head.training
    apply_stage(m, Stage("all"))
    assert all(p.requires_grad for p in m.parameters()) and m.encoder.training


def test_frozen_parameters_do_not_change_trainable_ones_do(pair_dir, tmp_path):
    torch.manual_seed(0)
    model = BNNet()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = small_config(pair_dir, lr=1e-2)
    cfg.stages = [Stage("only_head", 4, train=["head"], optimizer=OptimizerConfig(lr=1e-2))]
    res = train(cfg, tmp_path / "run", progress=False, model=model)
    after = res.model.state_dict()
    for k, v in init.items():
        if k.startswith("encoder"):  # weights and batch-norm statistics alike
            assert torch.equal(v, after[k]), k
    assert not torch.equal(init["head.weight"], after["head.weight"])
    assert model.modes and not any(model.modes)  # the frozen encoder ran in eval mode throughout
    assert model.stages == ["only_head"]


def test_two_stage_run(pair_dir, tmp_path):
    """Stage one trains everything but 'fuse'; stage two trains only 'fuse' (PoMAI's pattern)."""
    cfg = small_config(pair_dir, lr=1e-2, checkpoint_every=0)
    opt = OptimizerConfig("adam", lr=1e-2)
    cfg.stages = [Stage("s1", 3, freeze=["fuse"], optimizer=opt), Stage("s2", 3, train=["fuse"], optimizer=opt)]
    torch.manual_seed(cfg.seed)
    init = create_model("tiny_cnn", **cfg.model_kwargs).state_dict()
    mid = train(cfg, tmp_path / "run", progress=False, interrupt_at=3).model.state_dict()
    mid = {k: v.clone() for k, v in mid.items()}
    res = train(cfg, tmp_path / "run", resume=True, progress=False)
    end = res.model.state_dict()
    for k in init:
        if k.startswith("fuse"):
            assert torch.equal(init[k], mid[k]), k  # frozen in stage one
            assert not torch.equal(mid[k], end[k]), k  # trained in stage two
        elif k.startswith(("encoder", "head")):
            assert not torch.equal(init[k], mid[k]), k  # trained in stage one
            assert torch.equal(mid[k], end[k]), k  # frozen in stage two
    assert res.model.stage == "s2"
    assert [p.name for p in sorted((tmp_path / "run" / "checkpoints").glob("step_*"))] == [
        "step_00000003", "step_00000006"]
