"""Training-free baselines: any size, range, identities that hold by construction."""

from __future__ import annotations

import pytest
import torch

from ivfuse.models import FusionModel, create_model, list_models
from ivfuse.models.classical import haar_dwt2, haar_idwt2, collapse, laplacian_pyramid

BASELINES = ["average", "max", "laplacian", "dwt", "gff"]


def test_baselines_registered():
    assert set(BASELINES) <= set(list_models())


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("size", [(67, 45), (1, 1), (2, 3), (33, 97)])  # 37x53 and 2x32x32: test_contract.py
def test_shapes_and_range(name, size):
    model = create_model(name)
    assert isinstance(model, FusionModel)
    g = torch.Generator().manual_seed(0)
    ir, vis = torch.rand(2, 1, *size, generator=g), torch.rand(2, 1, *size, generator=g)
    out = model(ir, vis)
    assert out.shape == ir.shape
    assert out.min() >= 0 and out.max() <= 1
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BASELINES)
def test_fusing_an_image_with_itself_returns_it(name):
    x = torch.rand(1, 1, 45, 67, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(create_model(name)(x, x), x, atol=1e-5)


@pytest.mark.parametrize("name", BASELINES)
def test_symmetric_in_inputs(name):
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(1, 1, 40, 50, generator=g), torch.rand(1, 1, 40, 50, generator=g)
    model = create_model(name)
    # GFF breaks exact saliency ties towards the infrared input; everything else is symmetric.
    tol = 5e-2 if name == "gff" else 1e-6
    assert (model(a, b) - model(b, a)).abs().mean() < tol


def test_max_and_average_values():
    a = torch.tensor([[[[0.2, 0.9]]]])
    b = torch.tensor([[[[0.5, 0.1]]]])
    assert torch.allclose(create_model("max")(a, b), torch.tensor([[[[0.5, 0.9]]]]))
    assert torch.allclose(create_model("average")(a, b), torch.tensor([[[[0.35, 0.5]]]]))


def test_multiscale_keeps_salient_details_from_both():
    """A vertical edge only in ir and a horizontal one only in vis must both survive pyramid fusion."""
    ir = torch.full((1, 1, 64, 64), 0.5)
    vis = torch.full((1, 1, 64, 64), 0.5)
    ir[..., :, 32:] = 0.9
    vis[..., 32:, :] = 0.1
    for name in ("laplacian", "dwt", "gff"):
        f = create_model(name)(ir, vis)[0, 0]
        assert (f[16, 40] - f[16, 24]).abs() > 0.08, name  # across ir's edge
        assert (f[40, 16] - f[24, 16]).abs() > 0.08, name  # across vis's edge
        assert (f[16, 24] - 0.5).abs() < 0.1, name  # where neither has an edge, the shared level


@pytest.mark.parametrize("size", [(7, 9), (64, 33), (1, 5)])
def test_transforms_invert_exactly(size):
    x = torch.rand(1, 1, *size, dtype=torch.float64)
    ll, d = haar_dwt2(x)
    assert torch.allclose(haar_idwt2(ll, d, size), x, atol=1e-12)
    assert torch.allclose(collapse(laplacian_pyramid(x, 3)), x, atol=1e-12)


def test_bad_inputs():
    m = create_model("average")
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        m(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        m(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))
