import pytest
import torch

from ivfuse.color import RgbToYcbcr, YcbcrToRgb, rgb_to_luma, rgb_to_ycbcr, ycbcr_to_rgb


@pytest.mark.parametrize("shape", [(3, 1, 1), (2, 3, 67, 45), (1, 3, 5, 8)])
def test_roundtrip(shape):
    rgb = torch.rand(shape, dtype=torch.float64)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-12)


def test_bt601_values():
    # Pure red, green, blue and white/black against the BT.601 definition.
    rgb = torch.eye(3, dtype=torch.float64).view(3, 3, 1, 1)
    ycc = rgb_to_ycbcr(rgb)[:, :, 0, 0]
    assert torch.allclose(ycc[:, 0], torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64))
    white = rgb_to_ycbcr(torch.ones(1, 3, 1, 1))
    assert torch.allclose(white.flatten(), torch.tensor([1.0, 0.5, 0.5]), atol=1e-6)
    assert torch.allclose(rgb_to_luma(rgb)[:, 0], ycc[:, :1, None, None][:, 0].view(3, 1, 1))


def test_gray_has_neutral_chroma():
    g = torch.rand(1, 1, 4, 4).expand(1, 3, 4, 4)
    ycc = rgb_to_ycbcr(g)
    assert torch.allclose(ycc[:, 1:], torch.full_like(ycc[:, 1:], 0.5), atol=1e-6)


def test_module_equals_function():
    x = torch.rand(2, 3, 7, 9)
    assert torch.equal(RgbToYcbcr()(x), rgb_to_ycbcr(x))
    assert torch.equal(YcbcrToRgb()(x), ycbcr_to_rgb(x))


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\).*\(2, 4, 5\)"):
        rgb_to_ycbcr(torch.rand(2, 4, 5))


def test_gradcheck():
    x = torch.rand(1, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rgb_to_ycbcr, (x,))
    assert torch.autograd.gradcheck(ycbcr_to_rgb, (x,))
