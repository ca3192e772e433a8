"""Registry, weight cards and safetensors loading."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from torch import nn

from ivfuse.models import (
    FusionModel,
    WeightCard,
    create_model,
    list_models,
    load_checkpoint,
    register_model,
    save_weights,
)
from ivfuse.models.registry import _REGISTRY, get_model_entry


class _Tiny(FusionModel):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(2, width, 3, padding=1)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, ir, vis, return_maps=False):
        y = torch.sigmoid(self.out(torch.relu(self.conv(torch.cat((ir, vis), 1)))))
        return (y, {}) if return_maps else y


@pytest.fixture
def tiny_registered(tmp_path):
    card = WeightCard(file=str(tmp_path / "tiny_test.safetensors"), training_data="none")

    @register_model(name="tiny_test_model", weights=card)
    def tiny_test_model(**kw):
        """A tiny test network."""
        return _Tiny(**kw)

    yield card
    _REGISTRY.pop("tiny_test_model", None)


def test_list_models_pattern_and_pretrained(tiny_registered):
    assert list_models("tiny_test*") == ["tiny_test_model"]
    assert "tiny_test_model" not in list_models(pretrained=True)  # no file yet
    assert {"gff", "average"} <= set(list_models(pretrained=True))  # training-free counts as available
    assert get_model_entry("tiny_test_model").description == "A tiny test network."


def test_pretrained_without_weights_is_clear(tiny_registered):
    with pytest.raises(ValueError, match="no shipped weights"):
        create_model("tiny_test_model", pretrained=True)


def test_save_and_load_roundtrip_with_sha(tiny_registered, tmp_path):
    src = _Tiny()
    save_weights(src, tiny_registered.file)
    m = create_model("tiny_test_model", pretrained=True)
    for a, b in zip(src.state_dict().values(), m.state_dict().values()):
        assert torch.equal(a, b)
    digest = hashlib.sha256(open(tiny_registered.file, "rb").read()).hexdigest()
    load_checkpoint(_Tiny(), tiny_registered.file, sha256=digest)
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(_Tiny(), tiny_registered.file, sha256="0" * 64)
    assert not m.training  # create_model returns eval mode


def test_checkpoint_path_and_kwargs(tiny_registered, tmp_path):
    p = save_weights(_Tiny(width=6), tmp_path / "w6.safetensors")
    m = create_model("tiny_test_model", checkpoint_path=p, width=6)
    assert m.conv.out_channels == 6
    with pytest.raises(ValueError, match="do not fit"):
        create_model("tiny_test_model", checkpoint_path=p, width=4)


def test_refuses_pickle_and_garbage(tmp_path):
    pt = tmp_path / "w.pth"
    torch.save(_Tiny().state_dict(), pt)
    with pytest.raises(ValueError, match="only .safetensors"):
        load_checkpoint(_Tiny(), pt)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 32)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_checkpoint(_Tiny(), bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(_Tiny(), tmp_path / "none.safetensors")


def test_key_filter_maps_foreign_names(tmp_path):
    state = {f"module.{k}": v for k, v in _Tiny().state_dict().items()}
    from safetensors.torch import save_file

    save_file(state, tmp_path / "orig.safetensors")
    m = load_checkpoint(_Tiny(), tmp_path / "orig.safetensors",
                        key_filter=lambda sd: {k.removeprefix("module."): v for k, v in sd.items()})
    assert torch.equal(m.conv.weight, state["module.conv.weight"])


def test_weight_card_json_roundtrip(tmp_path):
    card = WeightCard(file="x.safetensors", sha256="ab", training_data="RoadScene 168 pairs", steps=10,
                      metrics={"tno/vifb/EN": 6.9}, params=123, gflops=1.5)
    p = tmp_path / "x.json"
    p.write_text(json.dumps(card.to_dict()))
    assert WeightCard.from_json(p) == card


def test_unknown_model_suggests():
    with pytest.raises(ValueError, match="unknown model 'lapla'.*laplacian"):
        create_model("lapla")


def test_duplicate_registration_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_model(name="gff")(lambda: None)
