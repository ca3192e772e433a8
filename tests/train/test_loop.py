"""The loop end to end: loss goes down, outputs, resume equality, validation, errors, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import small_config, write_pairs

from ivfuse.cli import main
from ivfuse.losses import register_loss
from ivfuse.models import WeightCard, create_model
from ivfuse.train.config import OptimizerConfig, ScheduleConfig, Stage
from ivfuse.train.loop import RunExistsError, train


def _rows(run, kind="train"):
    return [json.loads(x) for x in (Path(run) / "log.jsonl").read_text().splitlines() if json.loads(x)["kind"] == kind]


def test_short_run_lowers_loss_and_exports(pair_dir, tmp_path):
    cfg = small_config(pair_dir, steps=40, lr=1e-2, log_every=5)
    res = train(cfg, tmp_path / "run", progress=False)
    rows = _rows(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(5, 41, 5))
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert {"ssim", "int", "grad", "loss", "lr", "sec_per_step", "stage", "epoch"} <= set(rows[0])
    card = WeightCard.from_json(res.card)
    assert card.steps == 40 and card.file == "tiny_cnn.safetensors" and card.params > 0 and len(card.sha256) == 64
    model = create_model("tiny_cnn", checkpoint_path=res.weights, **cfg.model_kwargs)
    for k, v in model.state_dict().items():
        assert torch.equal(v, res.model.state_dict()[k])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == "tiny_cnn" and saved["stages"][0]["length"] == 40
    with pytest.raises(RunExistsError, match="--resume"):
        train(cfg, tmp_path / "run", progress=False)


def _two_stage(pair_dir, **kw):
    cfg = small_config(pair_dir, checkpoint_every=3, **kw)
    cfg.data.batch_size = 4  # 6 pairs -> 2 steps per epoch: stages cross epoch boundaries
    cfg.stages = [
        Stage("s1", 2, unit="epochs", freeze=["fg_head"], optimizer=OptimizerConfig("adam", lr=1e-2),
              schedule=ScheduleConfig("step", step_size=1, gamma=0.5)),
        Stage("s2", 4, train=["head", "fuse"], optimizer=OptimizerConfig("sgd", lr=1e-2, momentum=0.9)),
    ]
    cfg.model_kwargs = {"width": 8, "depth": 1}
    return cfg


@pytest.mark.parametrize("stop", [2, 5, 7])
def test_resume_is_bit_identical(pair_dir, tmp_path, stop):
    """Interrupted after `stop` steps (checkpoints every 3 and at the stage end, step 4), resumed to 8."""
    cfg = _two_stage(pair_dir)
    full = train(cfg, tmp_path / "full", progress=False)
    part = train(cfg, tmp_path / "part", progress=False, interrupt_at=stop)
    assert part.weights is None and part.steps == stop
    resumed = train(cfg, tmp_path / "part", resume=True, progress=False)
    assert resumed.steps == full.steps == 8
    a = load_file(str(full.weights))
    b = load_file(str(resumed.weights))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [r["step"] for r in _rows(tmp_path / "part")]
    assert steps == list(range(1, 9))  # no duplicated or missing log rows
    full_loss = [r["loss"] for r in _rows(tmp_path / "full")]
    assert [r["loss"] for r in _rows(tmp_path / "part")] == full_loss


def test_validation_rows(pair_dir, tmp_path):
    cfg = small_config(pair_dir, steps=4, val_path=str(pair_dir), val_every=2, val_max_pairs=2,
                       val_metrics=["EN", "SD", "NOT_A_METRIC"])
    res = train(cfg, tmp_path / "run", progress=False)
    val = _rows(tmp_path / "run", "val")
    assert [r["step"] for r in val] == [0, 2, 4]  # the untrained baseline first
    assert "val_loss" in val[0] and "NOT_A_METRIC" not in val[0]
    if "EN" in val[0]:  # ivfuse.metrics present
        assert 0 < val[0]["EN"] <= 8
    assert WeightCard.from_json(res.card).metrics["val_loss"] == pytest.approx(val[-1]["val_loss"], rel=1e-5)


def test_nan_loss_stops_with_a_message(pair_dir, tmp_path):
    @register_loss("_test_nan")
    class NaNLoss(torch.nn.Module):
        def forward(self, fused, maps, batch):
            loss = fused.mean() * float("nan")
            return loss, {"loss": loss.detach()}

    cfg = small_config(pair_dir, steps=2)
    cfg.loss.name, cfg.loss.kwargs = "_test_nan", {}
    with pytest.raises(FloatingPointError, match="loss is nan at step 0"):
        train(cfg, tmp_path / "run", progress=False)


def test_train_step_clips_the_gradient_norm():
    from ivfuse.train.step import train_step

    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([2.0, -3.0]))

        def forward(self, ir, vis, return_maps=False):
            return ir * self.w.sum(), {}

    def criterion(fused, maps, batch):
        loss = 1000.0 * fused.mean()
        return loss, {"loss": loss.detach()}

    batch = {"ir": torch.ones(1, 1, 2, 2), "vis": torch.ones(1, 1, 2, 2)}
    moved = {}
    for clip, scaled in ((0.0, False), (0.01, False), (0.01, True)):
        model = Scale()
        params = list(model.parameters())
        opt = torch.optim.SGD(params, lr=1.0)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10) if scaled else None
        terms = train_step(model, batch, criterion, opt, params, grad_clip=clip, scaler=scaler)
        assert float(terms["loss"]) == pytest.approx(-1000.0)
        moved[clip, scaled] = float((model.w.detach() - torch.tensor([2.0, -3.0])).norm())
    assert moved[0.0, False] == pytest.approx(1000.0 * 2**0.5, rel=1e-5)  # d loss / d w_i = 1000, unclipped
    assert moved[0.01, False] == pytest.approx(0.01, rel=1e-4)  # the global norm clipped to 0.01
    assert moved[0.01, True] == pytest.approx(0.01, rel=1e-4)  # gradients unscaled before clipping


def test_validation_uses_the_padded_forward_of_inference(pair_dir):
    from ivfuse.data import PairedDataset, collate_pairs
    from ivfuse.infer import run_model
    from ivfuse.models.tiny import TinyFusionCNN
    from ivfuse.train.loop import validate

    torch.manual_seed(0)
    model = TinyFusionCNN(width=4, depth=1)
    model.pad_multiple = 16  # 40 x 48 pairs: padded to 48 x 48, cropped back
    cfg = small_config(pair_dir)

    def criterion(fused, maps, batch):
        assert fused.shape == batch["ir"].shape
        loss = ((fused - batch["vis"]) ** 2).mean()
        return loss, {"loss": loss}

    ds = PairedDataset(str(pair_dir), cfg.data, train=False, max_pairs=2)
    got = validate(model, ds, criterion)
    assert model.training  # modes restored
    want = []
    for i in range(len(ds)):
        batch = collate_pairs([ds[i]])
        fused = run_model(model, batch["ir"], batch["vis"], device="cpu", tile=None)
        want.append(float(((fused - batch["vis"]) ** 2).mean()))
    assert got["val_loss"] == pytest.approx(sum(want) / len(want), rel=1e-6)


def test_crop_must_fit_pad_multiple(pair_dir, tmp_path):
    from ivfuse.models.tiny import TinyFusionCNN

    model = TinyFusionCNN(width=4, depth=1)
    model.pad_multiple = 16
    with pytest.raises(ValueError, match="multiple of 16"):
        train(small_config(pair_dir), tmp_path / "run", progress=False, model=model)


# ---------------------------------------------------------------------------------- CLI


def _cli_args(data, out, *extra):
    return ["train", "--model", "tiny_cnn", "--data", str(data), "--out", str(out), "--crop", "24",
            "--batch-size", "2", "--threads", "1", "--set", "model_kwargs={width = 8, depth = 1}", "-q", *extra]


def test_cli_train_and_bad_data(pair_dir, tmp_path, capsys):
    assert main(_cli_args(pair_dir, tmp_path / "run", "--steps", "3", "--log-every", "1")) == 0
    assert (tmp_path / "run" / "tiny_cnn.safetensors").is_file()
    assert [r["step"] for r in _rows(tmp_path / "run")] == [1, 2, 3]

    bad = write_pairs(tmp_path / "bad", n=3)
    (bad / "ir" / "001.png").write_bytes(b"not an image")
    capsys.readouterr()
    assert main(_cli_args(bad, tmp_path / "badrun", "--steps", "3")) == 1
    err = capsys.readouterr().err
    assert "1 of 3 training pairs are unusable" in err and "001" in err
    assert not (tmp_path / "badrun").exists()  # failed before anything was written

    empty = tmp_path / "empty"
    (empty / "ir").mkdir(parents=True)
    (empty / "vi").mkdir()
    assert main(_cli_args(empty, tmp_path / "emptyrun")) == 1
    assert "no infrared/visible pairs" in capsys.readouterr().err

    assert main(["train", "--model", "tiny_cnn", "--data", str(pair_dir), "--out", str(tmp_path / "x"),
                 "--steps", "7", "--set", "data.crop=32", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["crop"] == 32 and printed["stages"][0]["length"] == 7


def test_cli_killed_and_resumed_matches_uninterrupted(pair_dir, tmp_path):
    """SIGKILL a real `ivfuse train` process after its first checkpoint; resume; compare with an uninterrupted run."""
    steps = "40"
    extra = ("--steps", steps, "--checkpoint-every", "5", "--seed", "3")
    assert main(_cli_args(pair_dir, tmp_path / "full", *extra)) == 0
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "ivfuse.cli", *_cli_args(pair_dir, tmp_path / "killed", *extra)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if any(p.name.startswith("step_") for p in ckpts.glob("step_*")):
                break
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.skip("the run finished before it could be killed (machine too fast for this test)")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (tmp_path / "killed" / "tiny_cnn.safetensors").exists()
    assert main(["train", "--out", str(tmp_path / "killed"), "--resume", "-q"]) == 0
    a = load_file(str(tmp_path / "full" / "tiny_cnn.safetensors"))
    b = load_file(str(tmp_path / "killed" / "tiny_cnn.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_option_table_sets_each_config_field(pair_dir, tmp_path):
    from ivfuse.cli import build_parser
    from ivfuse.train.cli import OPTIONS, resolve_config

    given = {"--batch-size": "3", "--crop": "32", "--lr": "0.25", "--seed": "7", "--device": "cpu", "--amp": "bf16",
             "--threads": "2", "--workers": "1", "--boxes": "none", "--masks": "none", "--pseudo": "never",
             "--val": str(pair_dir), "--val-every": "5", "--checkpoint-every": "6", "--log-every": "4"}
    assert {o.flags for o in OPTIONS if o.path} == set(given)
    argv = ["train", "--model", "pomai_cpu", "--data", str(pair_dir), "--out", str(tmp_path / "run")]
    cfg = resolve_config(build_parser().parse_args(argv + [x for kv in given.items() for x in kv]))
    assert (cfg.data.batch_size, cfg.data.crop, cfg.data.workers) == (3, 32, 1)
    assert len(cfg.stages) == 2 and all(st.optimizer.lr == 0.25 for st in cfg.stages)
    assert (cfg.seed, cfg.device, cfg.amp, cfg.threads) == (7, "cpu", "bf16", 2)
    assert (cfg.data.boxes, cfg.data.masks, cfg.data.pseudo.mode) == ("", "", "never")
    assert cfg.val_path == str(pair_dir.resolve())
    assert (cfg.val_every, cfg.checkpoint_every, cfg.log_every) == (5, 6, 4)
    default = resolve_config(build_parser().parse_args(argv))  # options not given leave the recipe's values
    assert default.data.boxes == "auto" and default.seed != 7 and default.stages[0].optimizer.lr != 0.25
