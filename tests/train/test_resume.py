"""Resume for every registered model and recipe, failed resumes that change nothing, ``--init-from``.

A resumed run must find its losses and recipes by itself: the saved ``config.json`` is all it
has. The in-process tests therefore drop the recipe modules' registrations (and the modules)
before resuming, as a new process would start; one test resumes in a real new process.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from train_helpers import write_pairs

import ivfuse.losses as losses_mod
import ivfuse.train.recipes as recipes_mod
from ivfuse.cli import build_parser, main
from ivfuse.io import write_image
from ivfuse.models import WeightCard, get_model_entry, list_models
from ivfuse.train.cli import resolve_config
from ivfuse.train.config import LossSpec
from ivfuse.train.loop import build_model, train
from ivfuse.train.recipes import PRESETS

SIDE = 48


@pytest.fixture(scope="module")
def labelled_dir(tmp_path_factory) -> Path:
    """4 pairs of 48x48 with YOLO boxes (labels/) and foreground masks (masks/)."""
    root = write_pairs(tmp_path_factory.mktemp("labelled") / "pairs", n=4, h=SIDE, w=SIDE, seed=1)
    (root / "labels").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(2)
    for i in range(4):
        cx, cy = rng.uniform(0.3, 0.7, size=2)
        (root / "labels" / f"{i:03d}.txt").write_text(f"0 {cx:.3f} {cy:.3f} 0.250 0.300\n")
        mask = np.zeros((SIDE, SIDE))
        y, x = int(cy * SIDE), int(cx * SIDE)
        mask[y - 6 : y + 6, x - 6 : x + 6] = 1.0
        write_image(root / "masks" / f"{i:03d}.png", mask)
    return root


@contextlib.contextmanager
def fresh_registries():
    """The recipe and loss registries as a new process has them: only what ivfuse.losses registers itself.

    The recipe modules are dropped from ``sys.modules`` too, so that only the resume path can bring
    them back. Everything is restored afterwards.
    """
    saved_losses = dict(losses_mod._LOSSES)
    saved_recipes = dict(recipes_mod._RECIPES)
    saved_loaded = recipes_mod._loaded
    names = [n for n in sys.modules if n.startswith("ivfuse.train.recipe_")]
    saved_modules = {n: sys.modules[n] for n in names}
    try:
        for k in [k for k, f in losses_mod._LOSSES.items() if getattr(f, "__module__", "") != "ivfuse.losses"]:
            del losses_mod._LOSSES[k]
        recipes_mod._RECIPES.clear()
        recipes_mod._loaded = False
        for n in names:
            del sys.modules[n]
        assert "fusionnet_target_aware" not in losses_mod._LOSSES and "fgfusion" not in losses_mod._LOSSES
        yield
    finally:
        losses_mod._LOSSES.clear()
        losses_mod._LOSSES.update(saved_losses)
        recipes_mod._RECIPES.clear()
        recipes_mod._RECIPES.update(saved_recipes)
        recipes_mod._loaded = saved_loaded
        sys.modules.update(saved_modules)
        for n, mod in saved_modules.items():  # `import ivfuse.train.recipe_x as m` reads the package attribute
            setattr(sys.modules["ivfuse.train"], n.rsplit(".", 1)[1], mod)


def _args(model, preset, data, out, *extra):
    return ["train", "--model", model, "--preset", preset, "--data", str(data), "--out", str(out), "--steps", "2",
            "--crop", str(SIDE), "--batch-size", "2", "--threads", "1", "--checkpoint-every", "1", "--log-every", "1",
            "-q", *extra]


def _steps_logged(run: Path) -> list[int]:
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if r["kind"] == "train"]


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ivfuse: error: "), err
    return last


TRAINABLE = [m for m in list_models() if get_model_entry(m).trainable]
TRAINING_FREE = [m for m in list_models() if not get_model_entry(m).trainable]


def test_every_recipe_is_covered():
    """The parametrisation below reaches every recipe ivfuse ships and the default one."""
    patterns = {p for p in recipes_mod.list_recipes() if recipes_mod._RECIPES[p].fn.__module__.startswith("ivfuse.")}
    assert len(patterns) >= 3
    used = {recipes_mod.get_recipe(m).pattern for m in TRAINABLE}
    assert patterns <= used and "*" in used  # tiny_cnn: the default recipe


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("model", TRAINABLE)
def test_resume_every_model_and_recipe(model, preset, labelled_dir, tmp_path, capsys):
    """Stopped after step 1 of 2, resumed with fresh registries: reaches step 2, bit-identical to an
    uninterrupted run."""
    assert main(_args(model, preset, labelled_dir, tmp_path / "full")) == 0
    cfg = resolve_config(build_parser().parse_args(_args(model, preset, labelled_dir, tmp_path / "part")))
    part = train(cfg, tmp_path / "part", progress=False, interrupt_at=1)
    assert part.steps == 1 and part.weights is None
    capsys.readouterr()
    with fresh_registries():
        code = main(["train", "--out", str(tmp_path / "part"), "--resume", "-q"])
        err = capsys.readouterr().err
        assert code == 0, err
        assert "warning" not in err  # the saved configuration, unchanged
    card = WeightCard.from_json(tmp_path / "part" / f"{model}.json")
    assert card.steps == 2
    assert _steps_logged(tmp_path / "part") == [1, 2]
    a = load_file(str(tmp_path / "full" / f"{model}.safetensors"))
    b = load_file(str(tmp_path / "part" / f"{model}.safetensors"))
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


@pytest.mark.parametrize("model", TRAINING_FREE)
def test_training_free_models_are_refused_before_any_write(model, labelled_dir, tmp_path, capsys):
    assert main(_args(model, "cpu", labelled_dir, tmp_path / "run")) == 1
    assert "training-free" in _error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_resume_in_a_new_process(labelled_dir, tmp_path):
    """The reported case: `ivfuse train --resume` of a fusionnet_cpu run, in a process that has imported nothing."""
    cfg = resolve_config(build_parser().parse_args(_args("fusionnet_cpu", "cpu", labelled_dir, tmp_path / "run")))
    train(cfg, tmp_path / "run", progress=False, interrupt_at=1)
    proc = subprocess.run([sys.executable, "-m", "ivfuse.cli", "train", "--out", str(tmp_path / "run"), "--resume",
                           "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "resuming from" in proc.stderr and "(step 1 of 2)" in proc.stderr
    assert WeightCard.from_json(tmp_path / "run" / "fusionnet_cpu.json").steps == 2


# ------------------------------------------------------------------ a failed resume changes nothing


def _tiny_args(data, out, *extra):
    return ["train", "--model", "tiny_cnn", "--data", str(data), "--out", str(out), "--crop", "24", "--batch-size",
            "2", "--threads", "1", "--set", "model_kwargs={width = 8, depth = 1}", "--checkpoint-every", "1", "-q",
            *extra]


def _corrupt_weights(run: Path) -> None:
    ckpt = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    (ckpt / "model.safetensors").write_bytes(b"\x00garbage, not a safetensors header")


def _corrupt_state(run: Path) -> None:
    ckpt = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    (ckpt / "state.json").write_text('{"format": 1, "step": ')


FAILURES = {
    # name: (how the run folder is damaged, options given to --resume, words the error must contain)
    "corrupt-weights": (_corrupt_weights, [],
                        ["--resume: checkpoint", "model.safetensors' is unreadable", "delete that folder"]),
    "corrupt-state": (_corrupt_state, [], ["--resume: checkpoint", "state.json' is unreadable"]),
    "other-model": (None, ["--model", "pomai_cpu"], ["--resume", "trains 'tiny_cnn', not 'pomai_cpu'"]),
    "other-shapes": (None, ["--set", "model_kwargs={width = 16, depth = 1}"],
                     ["--resume: checkpoint", "model.safetensors", "tensor '", "in model 'tiny_cnn'"]),
    "unknown-loss": (None, ["--set", "loss.name=no_such_loss"], ["loss.name", "unknown loss 'no_such_loss'"]),
    "bad-loss-kwargs": (None, ["--set", "loss.kwargs={nonsense = 1.0}"], ["loss 'fusion': bad arguments"]),
    "fewer-steps": (None, ["--steps", "2"], ["at step 3", "--steps 3 or more"]),
    "bad-schedule": (None, ["--set", "stages.0.schedule.name=zigzag"], ["stages.0", "unknown schedule 'zigzag'"]),
    "with-init-from": (None, ["--init-from", "fusionnet_cpu"], ["--init-from", "--resume"]),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failed_resume_changes_nothing(failure, pair_dir, tmp_path, capsys):
    damage, extra, words = FAILURES[failure]
    run = tmp_path / "run"
    assert main(_tiny_args(pair_dir, run, "--steps", "4")) == 0
    ckpts = run / "checkpoints"
    shutil.rmtree(ckpts / "step_00000004")  # as if killed after step 3: step 4 and the export never happened
    (ckpts / "latest").write_text("step_00000003\n")
    (run / "tiny_cnn.safetensors").unlink()
    (run / "tiny_cnn.json").unlink()
    if damage is not None:
        damage(run)
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "-q", *extra]) == 1
    line = _error_line(capsys)
    for w in words:
        assert w in line, line
    assert _snapshot(run) == before  # byte for byte, and no new file


def test_resume_without_a_run_names_the_option(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "nothing"), "--resume", "-q"]) == 1
    line = _error_line(capsys)
    assert "--resume" in line and "--model NAME" in line
    assert not (tmp_path / "nothing").exists()


# ------------------------------------------------------------------ plug-in losses come back on resume


def test_plugin_loss_module_is_recorded_and_imported_on_resume(pair_dir, tmp_path, monkeypatch):
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "ivfuse_test_plugin_loss.py").write_text(
        "import torch\n"
        "from ivfuse.losses import register_loss\n\n"
        "@register_loss('_plugin_l1')\n"
        "class PluginL1(torch.nn.Module):\n"
        "    def forward(self, fused, maps, batch):\n"
        "        loss = (fused - torch.maximum(batch['ir'], batch['vis'])).abs().mean()\n"
        "        return loss, {'loss': loss.detach()}\n"
    )
    monkeypatch.syspath_prepend(str(plug))
    import importlib

    importlib.import_module("ivfuse_test_plugin_loss")
    try:
        args = _tiny_args(pair_dir, tmp_path / "run", "--steps", "2", "--set", "loss.name=_plugin_l1",
                          "--set", "loss.kwargs={}")
        cfg = resolve_config(build_parser().parse_args(args))
        train(cfg, tmp_path / "run", progress=False, interrupt_at=1)
        saved = json.loads((tmp_path / "run" / "config.json").read_text())
        assert saved["imports"] == ["ivfuse_test_plugin_loss"]
        del losses_mod._LOSSES["_plugin_l1"]
        del sys.modules["ivfuse_test_plugin_loss"]
        assert main(["train", "--out", str(tmp_path / "run"), "--resume", "-q"]) == 0
        assert "_plugin_l1" in losses_mod._LOSSES
        assert WeightCard.from_json(tmp_path / "run" / "tiny_cnn.json").steps == 2
    finally:
        losses_mod._LOSSES.pop("_plugin_l1", None)
        sys.modules.pop("ivfuse_test_plugin_loss", None)


# ------------------------------------------------------------------ --init-from


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """Weights of a 3-step tiny_cnn run (width 8, depth 1)."""
    root = tmp_path_factory.mktemp("init")
    data = write_pairs(root / "pairs", n=4)
    assert main(_tiny_args(data, root / "run", "--steps", "3", "--seed", "5")) == 0
    return root / "run" / "tiny_cnn.safetensors"


def test_init_from_file_sets_the_step_0_weights(tiny_weights, pair_dir, tmp_path):
    args = _tiny_args(pair_dir, tmp_path / "run", "--steps", "1", "--init-from", str(tiny_weights))
    cfg = resolve_config(build_parser().parse_args(args))
    assert cfg.init_from == str(tiny_weights.resolve())
    want = load_file(str(tiny_weights))
    start = build_model(cfg, cfg.init_from).state_dict()
    assert start.keys() == want.keys() and all(torch.equal(start[k], want[k]) for k in want)
    fresh = build_model(cfg).state_dict()  # the random initialisation differs: the check above means something
    assert not all(torch.equal(fresh[k], want[k]) for k in want)

    # through the loop: with a zero learning rate one step leaves the initial weights as they are
    assert main([*args, "--lr", "0"]) == 0
    out = load_file(str(tmp_path / "run" / "tiny_cnn.safetensors"))
    assert all(torch.equal(out[k], want[k]) for k in want)
    card = WeightCard.from_json(tmp_path / "run" / "tiny_cnn.json")
    assert f"Initialised from {tiny_weights.resolve()}" in card.notes and card.steps == 1
    with safe_open(str(tmp_path / "run" / "tiny_cnn.safetensors"), "pt") as fh:
        assert str(tiny_weights.resolve()) in fh.metadata()["init_from"]
    assert str(tiny_weights.resolve()) in json.loads((tmp_path / "run" / "run.json").read_text())["init_from"]


def test_init_from_shipped_weights(labelled_dir, tmp_path):
    args = _args("fusionnet_cpu", "cpu", labelled_dir, tmp_path / "run", "--init-from", "fusionnet_cpu")
    cfg = resolve_config(build_parser().parse_args(args))
    assert cfg.init_from == "fusionnet_cpu"
    card = get_model_entry("fusionnet_cpu").card()
    want = load_file(str(card.path()))
    got = build_model(cfg, cfg.init_from).state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_init_from_mismatching_file(tiny_weights, pair_dir, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    w = load_file(str(tiny_weights))
    first = next(iter(w))
    w[first] = torch.zeros(3, 3)
    save_file(w, str(bad))
    capsys.readouterr()
    assert main(_tiny_args(pair_dir, tmp_path / "run", "--steps", "1", "--init-from", str(bad))) == 1
    line = _error_line(capsys)
    assert f"--init-from '{bad.resolve()}'" in line and f"tensor '{first}' is (3, 3) there" in line
    assert not (tmp_path / "run").exists()

    # another width: the first tensor of the model that differs is named
    assert main(_tiny_args(pair_dir, tmp_path / "run", "--steps", "1", "--init-from", str(tiny_weights),
                           "--set", "model_kwargs={width = 16, depth = 1}")) == 1
    line = _error_line(capsys)
    assert str(tiny_weights.resolve()) in line and "tensor '" in line and "in model 'tiny_cnn'" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("spec, words", [
    ("weights.pt", ["--init-from '", "weights.pt': only .safetensors", "convert"]),
    ("weights.pth", ["only .safetensors"]),
    ("missing.safetensors", ["--init-from 'missing.safetensors'", "not found"]),
    ("no_such_model", ["no such file and no registered model"]),
    ("fusionnet", ["--init-from fusionnet", "no weights ship", "fusionnet_cpu"]),
    ("max", ["training-free"]),
])
def test_init_from_refusals(spec, words, pair_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("weights.pt").write_bytes(b"\x80\x04 a pickle that must never be opened")
    Path("weights.pth").write_bytes(b"\x80\x04")
    assert main(_tiny_args(pair_dir, tmp_path / "run", "--steps", "1", "--init-from", spec)) == 1
    line = _error_line(capsys)
    for w in words:
        assert w in line, line
    assert not (tmp_path / "run").exists()


def test_init_from_is_kept_in_the_config_and_not_reapplied_on_resume(tiny_weights, pair_dir, tmp_path):
    """A fine-tuning run stopped and resumed ends as the uninterrupted one (the checkpoint wins over --init-from)."""
    args = _tiny_args(pair_dir, tmp_path / "full", "--steps", "3", "--init-from", str(tiny_weights))
    assert main(args) == 0
    cfg = resolve_config(build_parser().parse_args(_tiny_args(pair_dir, tmp_path / "part", "--steps", "3",
                                                              "--init-from", str(tiny_weights))))
    train(cfg, tmp_path / "part", progress=False, interrupt_at=2)
    assert main(["train", "--out", str(tmp_path / "part"), "--resume", "-q"]) == 0
    a = load_file(str(tmp_path / "full" / "tiny_cnn.safetensors"))
    b = load_file(str(tmp_path / "part" / "tiny_cnn.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "Initialised from" in WeightCard.from_json(tmp_path / "part" / "tiny_cnn.json").notes


def test_loss_spec_of_a_stage_is_checked_too(pair_dir, tmp_path):
    cfg = resolve_config(build_parser().parse_args(_tiny_args(pair_dir, tmp_path / "run", "--steps", "2")))
    cfg.stages[0].loss = LossSpec("nope", {})
    with pytest.raises(ValueError, match=r"stages\.0\.loss\.name.*unknown loss 'nope'"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, words", [
    (["--model", "nope"], ["--model nope: unknown model", "registered: "]),
    (["--model", "tiny_cnn", "--preset", "foo"], ["--preset foo", "paper, cpu"]),
    (["--model", "tiny_cnn", "--config", "none.toml"], ["--config 'none.toml': file not found"]),
    (["--model", "tiny_cnn", "--config", "bad.toml"], ["--config 'bad.toml': unknown setting 'data.nope'"]),
    (["--model", "tiny_cnn", "--set", "data.nope=1"], ["--set: unknown setting 'data.nope'"]),
    (["--model", "tiny_cnn", "--out", "afile"], ["--out 'afile'", "a file is there"]),
    (["--model", "tiny_cnn", "--batch-size", "0"], ["--batch-size must be at least 1"]),
    (["--model", "tiny_cnn", "--resume", "--init-from", "fusionnet_cpu"], ["--init-from", "--resume"]),
])
def test_cli_errors_are_one_line_in_option_words(extra, words, pair_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.toml").write_text("[data]\nnope = 1\n")
    Path("afile").write_text("")
    assert main(["train", "--data", str(pair_dir), "--out", "run", "--steps", "1", "-q", *extra]) == 1
    line = _error_line(capsys)
    for w in words:
        assert w in line, line
    assert not Path("run").exists()


def test_init_partial_grows_a_model_from_weights_that_lack_some_tensors(tiny_weights, pair_dir, tmp_path, capsys):
    w = load_file(str(tiny_weights))
    dropped = sorted(w)[-1]
    smaller = tmp_path / "smaller.safetensors"
    save_file({k: v for k, v in w.items() if k != dropped}, str(smaller))
    capsys.readouterr()
    # without the option a missing tensor is an error that names it and the option
    assert main(_tiny_args(pair_dir, tmp_path / "run", "--steps", "1", "--init-from", str(smaller))) == 1
    line = _error_line(capsys)
    assert f"tensor '{dropped}'" in line and "missing there" in line and "--init-partial" in line
    assert not (tmp_path / "run").exists()

    args = _tiny_args(pair_dir, tmp_path / "run", "--steps", "1", "--init-from", str(smaller), "--init-partial")
    cfg = resolve_config(build_parser().parse_args(args))
    assert cfg.init_partial
    start = build_model(cfg, cfg.init_from).state_dict()
    fresh = build_model(cfg).state_dict()
    assert all(torch.equal(start[k], w[k]) for k in w if k != dropped)
    assert torch.equal(start[dropped], fresh[dropped]) and not torch.equal(start[dropped], w[dropped])
    assert main([*args, "--lr", "0"]) == 0
    assert f"keep their fresh initialisation: {dropped}" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["init_partial"] is True

    # a tensor the model lacks is still refused, and so is the option without --init-from
    extra = tmp_path / "extra.safetensors"
    save_file({**w, "not.a.tensor": torch.zeros(2)}, str(extra))
    assert main(_tiny_args(pair_dir, tmp_path / "run2", "--steps", "1", "--init-from", str(extra),
                           "--init-partial")) == 1
    assert "tensor 'not.a.tensor' there is not part of model 'tiny_cnn'" in _error_line(capsys)
    assert main(_tiny_args(pair_dir, tmp_path / "run3", "--steps", "1", "--init-partial")) == 1
    assert "--init-partial needs --init-from" in _error_line(capsys)
    assert not (tmp_path / "run2").exists() and not (tmp_path / "run3").exists()


def test_resume_config_difference_ignores_settings_added_since(tmp_path):
    from ivfuse.train.config import TrainConfig, config_to_dict
    from ivfuse.train.run_files import write_run_files

    cfg = TrainConfig()
    old = config_to_dict(cfg)
    del old["init_partial"]  # a config.json written before the setting existed
    said: list[str] = []
    write_run_files(tmp_path / "run", cfg, old, {}, said.append)
    assert said == []
    old["seed"] = cfg.seed + 1
    write_run_files(tmp_path / "run", cfg, old, {}, said.append)
    assert len(said) == 1 and "(seed)" in said[0]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == cfg.seed


def test_trained_variant_loads_by_name_from_its_file(tiny_weights, tmp_path):
    from safetensors import safe_open

    from ivfuse.models import create_model
    from ivfuse.models.registry import checkpoint_model_kwargs

    with safe_open(str(tiny_weights), framework="pt") as fh:
        assert json.loads(fh.metadata()["model_kwargs"]) == {"width": 8, "depth": 1}
    card = WeightCard.from_json(tiny_weights.with_suffix(".json"))
    assert card.model_kwargs == {"width": 8, "depth": 1}
    model = create_model("tiny_cnn", checkpoint_path=tiny_weights)  # no kwargs given: the file's are used
    want = load_file(str(tiny_weights))
    assert all(torch.equal(v, want[k]) for k, v in model.state_dict().items())
    assert checkpoint_model_kwargs(tiny_weights, "fusionnet_cpu") == {}  # recorded for another model
    plain = tmp_path / "plain.safetensors"
    save_file(want, str(plain))  # no metadata: the registered constructor, so the shapes do not fit
    with pytest.raises(ValueError, match="different variant"):
        create_model("tiny_cnn", checkpoint_path=plain)
    bad = tmp_path / "bad.safetensors"
    save_file(want, str(bad), metadata={"model": "tiny_cnn", "model_kwargs": "[8, 1]"})
    with pytest.raises(ValueError, match="not a JSON object"):
        create_model("tiny_cnn", checkpoint_path=bad)
