"""Configuration dataclasses, TOML and --set overrides, recipes and presets."""

from __future__ import annotations

import pytest

from ivfuse.losses import build_loss
from ivfuse.models import get_model_entry, list_models
from ivfuse.train.cli import scale_to_steps
from ivfuse.train.config import (
    ConfigError,
    LossSpec,
    Stage,
    TrainConfig,
    apply_dotted,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_toml,
)
from ivfuse.train.recipes import PRESETS, base_config, get_recipe, list_recipes, make_config, register_recipe
from ivfuse.train.stages import plan_stages


def test_toml_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(
        'seed = 3\n[data]\ncrop = 64\n[data.pseudo]\nk = 2.0\n[loss]\nname = "fusion"\nkwargs = { ssim = 2.0 }\n'
        '[[stages]]\nname = "a"\nlength = 5\n[stages.optimizer]\nlr = 0.01\n'
        '[[stages]]\nname = "b"\nlength = 2\nunit = "epochs"\ntrain = ["head"]\n[stages.loss]\nname = "fusion"\n'
    )
    base = make_config("tiny_cnn", "cpu")
    cfg = apply_overrides(base, load_toml(f))
    assert cfg.seed == 3 and cfg.data.crop == 64 and cfg.data.pseudo.k == 2.0
    assert cfg.data.batch_size == base.data.batch_size  # untouched fields survive
    assert cfg.loss == LossSpec("fusion", {"ssim": 2.0})
    assert [s.name for s in cfg.stages] == ["a", "b"] and isinstance(cfg.stages[0], Stage)
    assert cfg.stages[0].optimizer.lr == 0.01 and cfg.stages[0].optimizer.name == "adam"
    assert cfg.stages[1].unit == "epochs" and cfg.stages[1].train == ["head"] and cfg.stages[1].loss.name == "fusion"
    assert base.seed == 0  # the input is not modified


def test_unknown_and_mistyped_settings(tmp_path):
    cfg = TrainConfig()
    with pytest.raises(ConfigError, match="unknown setting 'data.crops'"):
        apply_overrides(cfg, {"data": {"crops": 3}})
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(cfg, {"data": {"crop": "big"}})
    with pytest.raises(ConfigError, match="expected true or false"):
        apply_overrides(cfg, {"data": {"hflip": 3}})
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(bad)
    with pytest.raises(FileNotFoundError):
        load_toml(tmp_path / "missing.toml")


def test_dotted_overrides():
    cfg = make_config("tiny_cnn", "cpu")
    cfg.stages.append(Stage("second"))
    out = apply_dotted(cfg, ["data.crop=48", "stages.1.optimizer.lr=1e-5", "loss.kwargs={ssim = 2.0}",
                             "stages.0.train=[\"encoder\"]", "device=cpu", "data.rot90=true",
                             "stages.1.loss.kwargs.roi=1.0", "model_kwargs.width=4"])
    assert out.data.crop == 48 and out.stages[1].optimizer.lr == 1e-5 and out.loss.kwargs == {"ssim": 2.0}
    assert out.stages[0].train == ["encoder"] and out.device == "cpu" and out.data.rot90 is True
    assert out.stages[1].loss.kwargs == {"roi": 1.0} and out.model_kwargs == {"width": 4}
    for bad, msg in (("data.crop", "KEY=VALUE"), ("stages.5.length=1", "not an index"), ("nope.x=1", "unknown")):
        with pytest.raises(ConfigError, match=msg):
            apply_dotted(cfg, [bad])


def test_round_trip():
    cfg = make_config("tiny_cnn", "paper")
    cfg.stages.append(Stage("s2", 3, loss=LossSpec("fusion", {"bce": 1.0})))
    d = config_to_dict(cfg)
    assert config_from_dict(d) == cfg


def test_recipe_registry():
    @register_recipe("_rtest*")
    def generic(preset):
        cfg = base_config(preset)
        cfg.description = "generic"
        return cfg

    @register_recipe("_rtest_big*", presets=("paper",))
    def specific(preset, model):
        cfg = base_config(preset)
        cfg.description = f"specific {model}"
        return cfg

    assert get_recipe("_rtest_a").fn is generic
    assert get_recipe("_rtest_big_1").fn is specific  # the longest pattern wins
    cfg = make_config("_rtest_big_1", "paper")
    assert cfg.description == "specific _rtest_big_1" and cfg.model == "_rtest_big_1" and cfg.preset == "paper"
    with pytest.raises(ValueError, match="unknown preset 'cpu'"):
        make_config("_rtest_big_1", "cpu")
    assert get_recipe("something_else").pattern == "*"  # the default recipe
    assert "_rtest*" in list_recipes()
    with pytest.raises(ValueError, match="already registered"):
        register_recipe("_rtest*")(lambda p: None)


def test_default_recipe_presets_are_valid():
    for preset in PRESETS:
        cfg = make_config("tiny_cnn", preset)
        plans = plan_stages(cfg.stages, steps_per_epoch=10)
        assert plans[-1].end > 0
        build_loss(cfg.loss)
    paper = make_config("tiny_cnn", "paper")
    assert (paper.data.crop, paper.data.batch_size, paper.stages[0].optimizer.lr) == (128, 16, 1e-4)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_trainable_model_has_a_valid_recipe(preset):
    for name in list_models():
        if not get_model_entry(name).trainable:
            continue
        entry = get_recipe(name)
        if preset not in entry.presets:
            continue
        cfg = make_config(name, preset)
        plan_stages(cfg.stages, steps_per_epoch=10)
        build_loss(cfg.loss)
        for st in cfg.stages:
            if st.loss is not None:
                build_loss(st.loss)


def test_scale_to_steps():
    cfg = make_config("tiny_cnn", "paper")  # 100 epochs, halve every 20
    cfg.stages = [cfg.stages[0], Stage("two", 25, unit="epochs")]
    cfg.stages[0].length = 75
    out = scale_to_steps(cfg, 200)
    assert [s.length for s in out.stages] == [150, 50] and all(s.unit == "steps" for s in out.stages)
    assert out.stages[0].schedule.step_size == 40
    for n in (2, 3, 7, 101):
        assert sum(s.length for s in scale_to_steps(cfg, n).stages) == n
    assert [s.length for s in scale_to_steps(cfg, 2).stages] == [1, 1]
    with pytest.raises(ValueError):
        scale_to_steps(cfg, 1)
