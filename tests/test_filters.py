"""The shared image filters: the FFT path of the separable convolution against the direct one."""

import pytest
import torch
import torch.nn.functional as F

from ivfuse.filters import _FFT_RADIUS, gaussian_blur, gaussian_kernel1d, safe_pad, safe_pad_indexed, separable_conv


def _direct(x: torch.Tensor, k: torch.Tensor, mode: str) -> torch.Tensor:
    b, c, h, w = x.shape
    r = (k.numel() - 1) // 2
    y = safe_pad(x.reshape(b * c, 1, h, w), (r, r, r, r), mode=mode)
    y = F.conv2d(F.conv2d(y, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_long_kernels_filter_by_fft_with_the_direct_result(mode):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 61, 83, generator=g)
    k = torch.rand(2 * (_FFT_RADIUS + 5) + 1, generator=g)  # not symmetric: the FFT path must not flip it
    k = k / k.sum()
    y = separable_conv(x, k, mode)
    assert y.shape == x.shape
    assert torch.allclose(y, _direct(x, k, mode), atol=1e-5)


def test_fft_blur_keeps_dtype_gradients_and_small_images():
    x = torch.rand(1, 1, 40, 50, dtype=torch.float64, requires_grad=True)
    y = gaussian_blur(x, 16.0)  # radius 48 > the image: replicated borders
    assert y.dtype == torch.float64 and y.shape == x.shape
    ref = _direct(x.detach(), gaussian_kernel1d(16.0, dtype=torch.float64), "replicate")
    assert torch.allclose(y.detach(), ref, atol=1e-5)
    y.sum().backward()  # a blur with a unit-sum kernel passes a constant gradient's mass through
    assert x.grad is not None and abs(x.grad.sum().item() - x.numel()) < 1e-2
    xb = torch.rand(1, 1, 64, 64).to(torch.bfloat16)
    assert gaussian_blur(xb, 16.0).dtype == torch.bfloat16



@pytest.mark.parametrize("shape", [(2, 1, 9, 13), (1, 1, 5, 30), (1, 1, 1, 4), (1, 1, 40, 56)])
def test_indexed_padding_equals_safe_pad_at_every_size(shape):
    x = torch.rand(*shape)
    for r in (1, 4, 5, 12, 48):
        assert torch.equal(safe_pad_indexed(x, r), safe_pad(x, (r, r, r, r), "reflect")), (shape, r)
