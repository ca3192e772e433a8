"""Layers shared by the networks (ivfuse.models.blocks)."""

from __future__ import annotations

import pytest
import torch

from ivfuse.models.blocks import MDTA, ChannelLayerNorm, DenseBlock, ModalityAttention


def test_channel_layer_norm_forms_agree_and_affine_switch():
    x = torch.randn(2, 6, 5, 7, generator=torch.Generator().manual_seed(0)) * 3 + 1
    mul = ChannelLayerNorm(6, 1e-6)(x)
    div = ChannelLayerNorm(6, 1e-6, rsqrt=False)(x)
    assert torch.allclose(mul, div, atol=1e-5)
    assert torch.allclose(div.mean(1), torch.zeros(2, 5, 7), atol=1e-5)
    assert torch.allclose(div.var(1, correction=0), torch.ones(2, 5, 7), atol=1e-4)
    plain = ChannelLayerNorm(6, affine=False)
    assert list(plain.state_dict()) == [] and set(ChannelLayerNorm(6).state_dict()) == {"weight", "bias"}
    assert set(ChannelLayerNorm(6, bias=False).state_dict()) == {"weight"}


def test_dense_block_and_modality_attention_shapes():
    x = torch.rand(1, 8, 5, 9)
    assert DenseBlock(8, 8, growth=4, layers=2)(x).shape == x.shape
    assert DenseBlock(8, 3, growth=4, layers=2)(x).shape == (1, 3, 5, 9)
    ctx = torch.rand(1, 8, 3, 4)
    for kind in ("spatial", "channel"):
        block = ModalityAttention(8, heads=2, kind=kind, pool=2, cross=True)
        assert block(x, x if kind == "channel" else ctx).shape == x.shape
    with pytest.raises(ValueError, match="needs a context"):
        ModalityAttention(8, cross=True)(x)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        MDTA(8)(torch.rand(8, 5, 9))
