"""The generic name registry behind models, losses, recipes and metrics."""

from __future__ import annotations

import pytest

from ivfuse._registry import Registry


def test_register_get_names_and_unknown_name():
    reg: Registry[int] = Registry("colour")
    one, two = object(), object()
    assert reg.register("red", one) is one
    reg.decorator("green")(two)
    assert reg.get("red") is one and reg["green"] is two
    assert reg.names() == ["green", "red"] and reg.names("g*") == ["green"]
    assert reg.names(sort=False) == ["red", "green"]
    with pytest.raises(ValueError, match=r"unknown colour 'blue'; registered: green, red"):
        reg.get("blue")
    with pytest.raises(ValueError, match=r"did you mean green\?"):
        reg.get("gree")
    assert reg.get("blue", None) is None
    ordered = Registry("metric", sort=False)
    ordered.register("SD", 1)
    ordered.register("AG", 2)
    assert ordered.names() == ["SD", "AG"] and ordered.names(sort=True) == ["AG", "SD"]
    with pytest.raises(ValueError, match="registered: SD, AG"):
        ordered.get("EN")


def test_same_object_again_is_accepted_a_different_one_refused():
    reg = Registry("loss")
    obj = object()
    reg.register("a", obj)
    reg.register("a", obj)
    with pytest.raises(ValueError, match="loss 'a' is already registered"):
        reg.register("a", object())
    tolerant = Registry("entry", same=lambda old, new: old == new)
    tolerant.register("x", [1])
    tolerant.register("x", [1])
    with pytest.raises(ValueError, match="already registered"):
        tolerant.register("x", [2])


def test_normalised_spellings_aliases_and_mapping_protocol():
    reg = Registry("metric", normalize=lambda s: s.lower().replace("-", ""))
    reg.register("ROI-SSIM", 1, aliases=("roissim_alias",))
    assert reg.canonical("roi-ssim") == reg.canonical("ROISSIM") == reg.canonical("ROISSIM_ALIAS") == "ROI-SSIM"
    with pytest.raises(ValueError, match="unknown metric 'xyz'"):
        reg.canonical("xyz")
    with pytest.raises(ValueError, match="unknown metric 3"):
        reg.canonical(3)
    saved = dict(reg)
    del reg["ROI-SSIM"]
    assert "ROI-SSIM" not in reg and len(reg) == 0
    with pytest.raises(ValueError, match="registered: none"):
        reg.canonical("roi-ssim")
    reg.update(saved)
    assert reg.get("roissim") == 1 and list(reg) == ["ROI-SSIM"]
