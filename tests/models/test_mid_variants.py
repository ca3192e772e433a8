"""The mid-size variants: deeper than ``*_cpu``, grown from its weights, any input size."""

from __future__ import annotations

import pytest
import torch

from ivfuse.models import create_model, list_models
from ivfuse.models.registry import count_parameters

PAIRS = [("fusionnet_cpu", "fusionnet_mid"), ("pomai_cpu", "pomai_mid"), ("fgfusion_cpu", "fgfusion_mid")]


@pytest.mark.parametrize("small,mid", PAIRS)
def test_mid_sits_between_cpu_and_paper_size(small, mid):
    assert mid in list_models()
    paper = small.removesuffix("_cpu")
    n_small, n_mid, n_paper = (count_parameters(create_model(n, pretrained=False)) for n in (small, mid, paper))
    assert n_small < n_mid < n_paper


@pytest.mark.parametrize("small,mid", PAIRS)
def test_mid_holds_every_cpu_tensor_with_its_shape(small, mid):
    """So ``--init-from <small> --init-partial`` copies all of the small variant's weights."""
    a = create_model(small, pretrained=False).state_dict()
    b = create_model(mid, pretrained=False).state_dict()
    assert set(a) < set(b)
    assert all(a[k].shape == b[k].shape for k in a)


@pytest.mark.parametrize("mid", [m for _, m in PAIRS])
def test_mid_any_size(mid):
    torch.manual_seed(0)
    model = create_model(mid, pretrained=False).eval()
    ir, vis = torch.rand(1, 1, 37, 53), torch.rand(1, 1, 37, 53)
    with torch.no_grad():
        fused = model(ir, vis)
    assert fused.shape == (1, 1, 37, 53)
    assert torch.isfinite(fused).all() and float(fused.min()) >= 0 and float(fused.max()) <= 1
