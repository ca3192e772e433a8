"""Layers shared by several fusion networks.

All layers take and return (B, C, H, W) float tensors and accept any H, W >= 1.

- :class:`ChannelLayerNorm`: LayerNorm over the channel axis at every pixel (Restormer's "WithBias" norm).
- :class:`MDTA`: multi-Dconv head transposed attention (attention across channels, linear in H*W).
- :class:`GDFN`: gated-Dconv feed-forward network.
- :class:`RestormerBlock`: ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))`` (Zamir et al., CVPR 2022).
- :class:`ChannelAttention`, :class:`SpatialAttention`: squeeze-excitation and CBAM-style attention maps.
- :class:`DenseBlock`: densely connected 3x3 layers and a 1x1 merge (FGFusion's DeB).
- :class:`ModalityAttention`: pre-norm self- or cross-attention between two feature maps, linear in H*W
  (FGFusion's multimodal attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..filters import check_bchw

__all__ = [
    "GDFN",
    "MDTA",
    "ChannelAttention",
    "ChannelLayerNorm",
    "DenseBlock",
    "ModalityAttention",
    "RestormerBlock",
    "SpatialAttention",
    "match_memory_format",
]


def match_memory_format(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``t`` in channels-last layout when ``ref`` is (convolutions on CPU are several times faster in it)."""
    if ref.dim() == 4 and not ref.is_contiguous() and ref.is_contiguous(memory_format=torch.channels_last):
        return t.contiguous(memory_format=torch.channels_last)
    return t


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over channels, independently at each pixel.

    Independent of batch size and image size, so training crops and full images see the same
    statistics.

    Args:
        channels: C.
        eps: added to the variance.
        bias: learn a shift as well as a scale.
        affine: learn the scale (and shift) at all; False normalises only.
        rsqrt: multiply by ``rsqrt(var + eps)`` (Restormer's form, PoMAI's weights) rather than divide by
            ``sqrt(var + eps)`` (FGFusion's weights). The two agree to float rounding (about 1e-6); each
            set of shipped weights keeps the form it was trained with.

    Shape:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self, channels: int, eps: float = 1e-5, bias: bool = True, affine: bool = True, rsqrt: bool = True
    ) -> None:
        super().__init__()
        self.eps = eps
        self.rsqrt = rsqrt
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine and bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        if self.rsqrt:
            y = (x - mean) * torch.rsqrt(var + self.eps)
        else:
            y = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(1, -1, 1, 1)
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
        check_bchw(x, "MDTA")
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


class DenseBlock(nn.Module):
    """Dense block (DeB): each 3x3 layer sees all earlier outputs; a 1x1 conv maps back.

    Args:
        in_channels: input channels.
        out_channels: output channels (a residual connection is added when equal to the input).
        growth: channels each layer adds.
        layers: number of 3x3 layers.
    """

    def __init__(self, in_channels: int, out_channels: int, growth: int = 16, layers: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels + i * growth, growth, 3, padding=1),
                          nn.ReLU(inplace=True))
            for i in range(layers)
        )
        self.fuse = nn.Conv2d(in_channels + layers * growth, out_channels, 1)
        self.residual = in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        y = self.fuse(torch.cat(feats, 1))
        return x + y if self.residual else y


class ModalityAttention(nn.Module):
    """Pre-norm attention block: queries from ``x``, keys and values from ``context``, then an FFN.

    ``Self(x)`` is ``block(x, x)``; ``Cross(x, y)`` is ``block(x, y)``. The paper cites token
    attention (ViLBERT, LXMERT) without saying how it is made affordable on image features; two
    forms are offered, both linear in the number of pixels:

    - ``"spatial"``: every pixel attends to the context average-pooled to at most
      ``pool x pool`` tokens (spatial-reduction attention).
    - ``"channel"``: attention between channels over all pixels (transposed attention).

    Args:
        dim: channels of ``x`` and ``context``.
        heads: attention heads (must divide ``dim``).
        kind: "spatial" or "channel".
        pool: key/value grid side for "spatial".
        ffn_expansion: hidden width of the feed-forward part, as a multiple of ``dim``.
        cross: a cross-attention block (its context gets its own normalisation); a self-attention
            block ignores any context it is given.
    """

    def __init__(self, dim: int, heads: int = 2, kind: str = "spatial", pool: int = 8, ffn_expansion: int = 2,
                 cross: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"ModalityAttention: heads ({heads}) must divide dim ({dim})")
        if kind not in ("spatial", "channel"):
            raise ValueError(f"ModalityAttention: kind must be 'spatial' or 'channel', got '{kind}'")
        self.heads, self.kind, self.pool = heads, kind, pool
        self.norm_q, self.norm_ffn = ChannelLayerNorm(dim, 1e-6, rsqrt=False), ChannelLayerNorm(dim, 1e-6, rsqrt=False)
        self.norm_kv = ChannelLayerNorm(dim, 1e-6, rsqrt=False) if cross else None
        self.q = nn.Conv2d(dim, dim, 1)
        self.kv = nn.Conv2d(dim, 2 * dim, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        if kind == "channel":
            self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        hidden = dim * ffn_expansion
        self.ffn = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
        )

    def _attend(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        nh, d = self.heads, c // self.heads
        q = self.q(x)
        if self.kind == "spatial":
            ctx = context
            if ctx.shape[-2] > self.pool or ctx.shape[-1] > self.pool:
                ctx = F.adaptive_avg_pool2d(ctx, (min(self.pool, ctx.shape[-2]), min(self.pool, ctx.shape[-1])))
            k, v = self.kv(ctx).chunk(2, 1)
            q = q.reshape(b, nh, d, h * w).transpose(-1, -2)  # (B, nh, HW, d)
            k = k.reshape(b, nh, d, -1).transpose(-1, -2)  # (B, nh, T, d)
            v = v.reshape(b, nh, d, -1).transpose(-1, -2)
            out = F.scaled_dot_product_attention(q, k, v)  # (B, nh, HW, d)
            out = out.transpose(-1, -2).reshape(b, c, h, w)
        else:
            k, v = self.kv(context).chunk(2, 1)
            q = F.normalize(q.reshape(b, nh, d, h * w), dim=-1)
            k = F.normalize(k.reshape(b, nh, d, h * w), dim=-1)
            attn = torch.softmax(q @ k.transpose(-1, -2) * self.temperature, dim=-1)  # (B, nh, d, d)
            out = (attn @ v.reshape(b, nh, d, h * w)).reshape(b, c, h, w)
        return self.proj(out)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, h, w) queries and, for cross-attention, (B, C, h', w') context -> (B, C, h, w)."""
        xn = self.norm_q(x)
        if self.norm_kv is None:
            cn = xn
        elif context is None:
            raise ValueError("ModalityAttention: a cross-attention block needs a context")
        else:
            cn = self.norm_kv(context)
        x = x + self._attend(xn, cn)
        return x + self.ffn(self.norm_ffn(x))
