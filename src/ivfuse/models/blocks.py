"""Layers shared by several fusion networks.

All layers take and return (B, C, H, W) float tensors and accept any H, W >= 1.

- :class:`ChannelLayerNorm`: LayerNorm over the channel axis at every pixel (Restormer's "WithBias" norm).
- :class:`MDTA`: multi-Dconv head transposed attention (attention across channels, linear in H*W).
- :class:`GDFN`: gated-Dconv feed-forward network.
- :class:`RestormerBlock`: ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))`` (Zamir et al., CVPR 2022).
- :class:`ChannelAttention`, :class:`SpatialAttention`: squeeze-excitation and CBAM-style attention maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GDFN",
    "MDTA",
    "ChannelAttention",
    "ChannelLayerNorm",
    "RestormerBlock",
    "SpatialAttention",
    "match_memory_format",
]


def match_memory_format(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``t`` in channels-last layout when ``ref`` is (convolutions on CPU are several times faster in it)."""
    if ref.dim() == 4 and not ref.is_contiguous() and ref.is_contiguous(memory_format=torch.channels_last):
        return t.contiguous(memory_format=torch.channels_last)
    return t


def _check_4d(x: torch.Tensor, who: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{who}: expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over channels, independently at each pixel.

    Args:
        channels: C.
        eps: added to the variance.
        bias: learn a shift as well as a scale.

    Shape:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(1, -1, 1, 1)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


class MDTA(nn.Module):
    """Multi-Dconv head transposed attention.

    Queries, keys and values come from a 1x1 conv followed by a 3x3 depthwise conv. Attention is
    computed between channels (a C/h x C/h map per head) from L2-normalised queries and keys scaled by
    a learned temperature, so the cost is linear in the number of pixels.

    Args:
        dim: channels C (divisible by ``num_heads``).
        num_heads: attention heads.
        bias: biases in the convolutions.
    """

    def __init__(self, dim: int, num_heads: int = 1, bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"MDTA: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dw = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.proj = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_4d(x, "MDTA")
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, c // self.num_heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature  # (B, heads, C/h, C/h)
        out = attn.softmax(dim=-1) @ v
        return self.proj(match_memory_format(out.reshape(b, c, h, w), x))


class GDFN(nn.Module):
    """Gated-Dconv feed-forward network: ``proj(gelu(a) * b)`` with ``a, b = dw3x3(conv1x1(x))``.

    Args:
        dim: channels C.
        expansion: hidden width as a multiple of C.
        bias: biases in the convolutions.
    """

    def __init__(self, dim: int, expansion: float = 2.0, bias: bool = False) -> None:
        super().__init__()
        hidden = max(1, round(dim * expansion))
        self.proj_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dw = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.proj_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, g = self.dw(self.proj_in(x)).chunk(2, dim=1)
        return self.proj_out(F.gelu(a) * g)


class RestormerBlock(nn.Module):
    """Restormer transformer block: pre-norm MDTA and GDFN, each with a residual connection.

    Args:
        dim: channels C.
        num_heads: heads of the MDTA.
        ffn_expansion: hidden width of the GDFN as a multiple of C.
        bias: biases in the convolutions.

    Shape:
        (B, C, H, W) -> (B, C, H, W), any H, W.
    """

    def __init__(self, dim: int, num_heads: int = 1, ffn_expansion: float = 2.0, bias: bool = False) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = MDTA(dim, num_heads, bias)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GDFN(dim, ffn_expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class ChannelAttention(nn.Module):
    """Squeeze-excitation channel attention: ``sigmoid(mlp(avgpool(x)))``, a (B, C, 1, 1) score in (0, 1).

    Args:
        channels: C.
        reduction: hidden width is ``max(1, C // reduction)``.
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(x.mean(dim=(2, 3), keepdim=True)))


class SpatialAttention(nn.Module):
    """CBAM-style spatial attention: ``sigmoid(conv_k(cat(mean_c(x), max_c(x))))``, a (B, 1, H, W) score.

    Args:
        kernel_size: odd size of the convolution over the two pooled maps.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"SpatialAttention: kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), dim=1)
        return torch.sigmoid(self.conv(pooled))
