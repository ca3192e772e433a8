"""FGFusion's two readings of eq. (2) in the coupling layers."""

from __future__ import annotations

import pytest
import torch

from ivfuse.models import create_model
from ivfuse.models.fgfusion import CouplingLayer


def feats(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 9, 11, generator=g), torch.randn(2, 4, 9, 11, generator=g)


def test_literal_form_conditions_on_the_input_visible_features():
    torch.manual_seed(0)
    inv = CouplingLayer(4, form="invertible")
    lit = CouplingLayer(4, form="literal")
    lit.load_state_dict(inv.state_dict())  # same parameters, only the order of use differs
    ir, vi = feats()
    with torch.no_grad():
        ir_i, vi_i = inv(ir, vi)
        ir_l, vi_l = lit(ir, vi)
        expected = ir * torch.sigmoid(lit.scale_ir(vi)) + lit.shift_ir(vi)  # eq. (2) as printed
    assert torch.allclose(vi_i, vi_l)  # first line identical
    assert torch.allclose(ir_l, expected, atol=1e-6)
    assert not torch.allclose(ir_i, ir_l, atol=1e-4)


def test_only_the_invertible_form_inverts():
    torch.manual_seed(1)
    inv, lit = CouplingLayer(4, form="invertible"), CouplingLayer(4, form="literal")
    ir, vi = feats(1)
    with torch.no_grad():
        back = inv.inverse(*inv(ir, vi))
    assert torch.allclose(back[0], ir, atol=1e-4) and torch.allclose(back[1], vi, atol=1e-4)
    with pytest.raises(ValueError, match="literal"):
        lit.inverse(ir, vi)


def test_presets_and_bad_form():
    assert all(c.form == "literal" for c in create_model("fgfusion", pretrained=False).drm.couplings)
    assert all(c.form == "invertible" for c in create_model("fgfusion_cpu", pretrained=False).drm.couplings)
    with pytest.raises(ValueError, match="coupling form"):
        CouplingLayer(4, form="swapped")


def test_shipped_cpu_weights_load_in_either_form():
    literal = create_model("fgfusion_cpu", pretrained=False, coupling="literal")
    shipped = create_model("fgfusion_cpu")
    literal.load_state_dict(shipped.state_dict())  # strict: the forms share every parameter
    ir, vis = torch.rand(1, 1, 24, 28), torch.rand(1, 1, 24, 28)
    with torch.no_grad():
        out = literal.eval()(ir, vis)
    assert out.shape == ir.shape and 0 <= out.min() and out.max() <= 1
