"""PoMAI: Progressive Modality-Adaptive Interactive network (Huang, Su, Xu, Ke, IJCAI 2025).

Section by section (equation numbers of the paper in the comments):

- 3.2 shared encoder: four Restormer blocks applied to both inputs (eq. 1).
- 3.3 NGMM: two 1x1 branches (eq. 2), hash-based feature neighbouring with angular LSH (Andoni et al. 2015)
  computed on the right branch and shared with the left (eq. 3), group attention in groups of K, added back to
  the encoder feature (:mod:`ivfuse.models.ngmm`).
- 3.4 CAMN: spatial-context block (eq. 4), channel-context block (eq. 5), final residual.
- 3.5 MICM: feature perceptual module (eq. 6-7) and gated feature fusion (eq. 8-11).
- 3.6 decoder mirroring the encoder, fed with Cat(NGMM, CAMN) in stage one (eq. 12) and MICM in stage two (eq. 13).

The network fuses one-channel images: infrared gray and the visible luminance Y (the paper feeds RGB visible
images; colour is restored outside the network in ivfuse). Training follows Section 3.7 through the recipe in
``ivfuse.train.recipe_pomai``: :meth:`PoMAI.set_stage` switches the decoder input between eq. 12 and eq. 13.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..infer import crop_to, pad_to_multiple
from .base import FusionModel, check_inputs
from .blocks import ChannelAttention, ChannelLayerNorm, RestormerBlock, SpatialAttention
from .ngmm import NGMM, lsh_buckets, sort_by_bucket, unsort
from .registry import register_model

__all__ = [
    "CAMN",
    "MICM",
    "NGMM",
    "STAGES",
    "Decoder",
    "PoMAI",
    "SharedEncoder",
    "lsh_buckets",
    "sort_by_bucket",
    "unsort",
]

#: stage names understood by :meth:`PoMAI.set_stage`.
STAGES = ("stage1", "stage2", "joint", "final")


# ----------------------------------------------------------------------------------------------------------------
# Shared encoder (Section 3.2, eq. 1) and decoder (Section 3.6, eq. 12-13)
# ----------------------------------------------------------------------------------------------------------------
class SharedEncoder(nn.Module):
    """3x3 embedding of the one-channel image followed by cascaded Restormer blocks (eq. 1).

    Args:
        dim: feature channels C.
        num_blocks: Restormer blocks (four in the paper).
        num_heads: MDTA heads.
        ffn_expansion: GDFN hidden width as a multiple of C.
        stride: 1 in the paper. The CPU variant uses 4: a pixel-unshuffle folds each 4x4 patch into channels
            before the embedding, so the blocks run on (H/4, W/4) (the decoder unfolds it again).

    Shape:
        (B, 1, H, W) -> (B, C, H / stride, W / stride); H and W must be multiples of ``stride``.
    """

    def __init__(
        self, dim: int, num_blocks: int = 4, num_heads: int = 1, ffn_expansion: float = 2.0, stride: int = 1
    ) -> None:
        super().__init__()
        self.stride = stride
        self.embed = nn.Sequential(
            nn.PixelUnshuffle(stride) if stride > 1 else nn.Identity(),
            nn.Conv2d(stride * stride, dim, 3, padding=1, bias=False),
        )
        self.blocks = nn.Sequential(*(RestormerBlock(dim, num_heads, ffn_expansion) for _ in range(num_blocks)))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.embed(img))


class Decoder(nn.Module):
    """Mirror of the encoder: 1x1 reduction of the 2C input, Restormer blocks, 3x3 convs to one channel, sigmoid.

    Args:
        dim: feature channels C; the input has 2C channels (eq. 12 and 13).
        num_blocks: Restormer blocks.
        num_heads: MDTA heads.
        ffn_expansion: GDFN hidden width as a multiple of C.
        stride: the encoder's stride; the head predicts stride**2 channels and pixel-shuffles them.
        detail_skip: add a full-resolution 3x3 conv of the two input images to the output logits, so a
            strided (CPU) variant can pass fine edges it cannot represent at 1/stride resolution. Not in the paper
            (which has no stride); off for ``pomai``.
        detail_hidden: 0 (off) or the width h of a small full-resolution refinement added after the detail
            skip: ``conv3x3(3 -> h), LeakyReLU, conv3x3(h -> 1)`` on ``[ir, vis, sigmoid(logits)]``, added to the
            logits. Unlike the linear detail skip it can choose, pixel by pixel, which input's edge to keep. Its
            last conv starts at zero, so a model that gains it starts from the same output. Needs
            ``detail_skip``; not in the paper.
        source_blend: the output becomes a per-pixel convex mix ``w_i * I + w_v * V + w_r * R`` of the two
            sources and the decoded image R, the softmax weights coming from a 3x3 conv on the decoder's features
            (pixel-shuffled to full resolution) plus a small full-resolution conv on ``[ir, vis, R]``, so the
            network can copy a source's pixels where its 1/stride decoder would smooth them. Both branches end
            in zero-initialised convs and the reconstruction's logit starts at ``blend_bias``, so weights grown
            onto a model without it (``--init-partial``) start close to that model. Needs ``detail_skip``
            (the full-resolution images); not in the paper.
        blend_bias: initial logit of R's weight in that mix (2: w_r = 0.79 at the start).

    Shape:
        (B, 2C, H / stride, W / stride) and, with ``detail_skip``, the (B, 2, H, W) inputs -> (B, 1, H, W) in (0, 1).
    """

    def __init__(
        self,
        dim: int,
        num_blocks: int = 4,
        num_heads: int = 1,
        ffn_expansion: float = 2.0,
        stride: int = 1,
        detail_skip: bool = False,
        detail_hidden: int = 0,
        source_blend: bool = False,
        blend_bias: float = 2.0,
    ) -> None:
        super().__init__()
        if source_blend and not detail_skip:
            raise ValueError("Decoder: source_blend needs detail_skip=True")
        if detail_hidden < 0:
            raise ValueError(f"Decoder: detail_hidden must be >= 0, got {detail_hidden}")
        if detail_hidden and not detail_skip:
            raise ValueError("Decoder: detail_hidden needs detail_skip=True")
        self.detail = nn.Conv2d(2, 1, 3, padding=1) if detail_skip else None
        self.refine = None
        if detail_hidden:
            self.refine = nn.Sequential(
                nn.Conv2d(3, detail_hidden, 3, padding=1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(detail_hidden, 1, 3, padding=1),
            )
            nn.init.zeros_(self.refine[2].weight)
            nn.init.zeros_(self.refine[2].bias)
        self.reduce = nn.Conv2d(2 * dim, dim, 1, bias=False)
        self.blocks = nn.Sequential(*(RestormerBlock(dim, num_heads, ffn_expansion) for _ in range(num_blocks)))
        half = max(1, dim // 2)
        self.head = nn.Sequential(
            nn.Conv2d(dim, half, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(half, stride * stride, 3, padding=1),
            nn.PixelShuffle(stride) if stride > 1 else nn.Identity(),
        )
        self.mix_context: nn.Sequential | None = None
        self.mix_local: nn.Sequential | None = None
        if source_blend:
            self.mix_context = nn.Sequential(
                nn.Conv2d(dim, 3 * stride * stride, 3, padding=1, bias=False),
                nn.PixelShuffle(stride) if stride > 1 else nn.Identity(),
            )
            nn.init.zeros_(self.mix_context[0].weight)
            self.mix_local = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(8, 3, 3, padding=1),
            )
            nn.init.zeros_(self.mix_local[2].weight)
            with torch.no_grad():
                self.mix_local[2].bias.copy_(torch.tensor([0.0, 0.0, float(blend_bias)]))

    def forward(self, x: torch.Tensor, images: torch.Tensor | None = None, return_blend: bool = False):
        """Decode; with ``return_blend`` also return the source-blend weights (B, 3, H, W) (ir, vis, decoded)
        or None without ``source_blend``."""
        h = self.blocks(self.reduce(x))
        logits = self.head(h)
        if self.detail is not None:
            if images is None:
                raise ValueError("Decoder: detail_skip needs the (B, 2, H, W) input images")
            logits = logits + self.detail(images)
            if self.refine is not None:
                logits = logits + self.refine(torch.cat((images, torch.sigmoid(logits)), dim=1))
        recon = torch.sigmoid(logits)
        if self.mix_local is None:
            return (recon, None) if return_blend else recon
        mix = self.mix_context(h) + self.mix_local(torch.cat((images, recon), dim=1))
        w = torch.softmax(mix, dim=1)
        fused = w[:, 0:1] * images[:, 0:1] + w[:, 1:2] * images[:, 1:2] + w[:, 2:3] * recon
        return (fused, w) if return_blend else fused


# ----------------------------------------------------------------------------------------------------------------
# Context-Aware Modeling Network (Section 3.4, eq. 4-5)
# ----------------------------------------------------------------------------------------------------------------
class CAMN(nn.Module):
    """Context-Aware Modeling Network for the visible branch.

    SCB (eq. 4): ``x_scb = conv1x1(DC7x7(conv1x1(x))) + x``. CCB (eq. 5): ``x_ccb = PC(PC(Norm(x_scb))) + x_scb``.
    Final residual: ``x_camn = x_ccb + x``.

    Where the paper is silent (constructor arguments): the 7x7 dilated conv is depthwise with dilation 3
    (``dilation``, ``depthwise``), a GELU follows the first 1x1 conv of the SCB and sits between the two pointwise
    convs of the CCB (``activation``), the CCB's hidden width is ``ccb_expansion * C`` and its norm is a
    channel LayerNorm.

    Args:
        dim: channels C.
        dilation: dilation of the 7x7 conv.
        depthwise: make the 7x7 conv depthwise (otherwise a full C->C conv).
        ccb_expansion: hidden width of the CCB as a multiple of C.
        activation: insert GELUs as described above.

    Shape:
        (B, C, H, W) -> (B, C, H, W), any H, W.
    """

    def __init__(
        self, dim: int, dilation: int = 3, depthwise: bool = True, ccb_expansion: float = 2.0, activation: bool = True
    ) -> None:
        super().__init__()
        act = nn.GELU if activation else nn.Identity
        hidden = max(1, round(dim * ccb_expansion))
        self.scb = nn.Sequential(  # eq. 4
            nn.Conv2d(dim, dim, 1),
            act(),
            nn.Conv2d(dim, dim, 7, padding=3 * dilation, dilation=dilation, groups=dim if depthwise else 1),
            nn.Conv2d(dim, dim, 1),
        )
        self.ccb = nn.Sequential(  # eq. 5
            ChannelLayerNorm(dim), nn.Conv2d(dim, hidden, 1), act(), nn.Conv2d(hidden, dim, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_scb = self.scb(x) + x  # eq. 4
        x_ccb = self.ccb(x_scb) + x_scb  # eq. 5
        return x_ccb + x  # final residual -> x_camn


# ----------------------------------------------------------------------------------------------------------------
# Modality-Interactive Compensation Module (Section 3.5, eq. 6-11)
# ----------------------------------------------------------------------------------------------------------------
class MICM(nn.Module):
    """Modality-Interactive Compensation Module: FPM (eq. 6-7) then GFF (eq. 8-11).

    FPM: ``x_sum = x_I + x_V``; ``x_fpm = Cat(SA(x_sum) + CA(x_sum), x_sum)`` with SA and CA applied as
    attention-weighted features ``x_sum * score``. GFF: ``W = sigmoid(Dconv7x7(x_fpm))`` (eq. 8);
    ``x_enh_V = W x_V + x_camn`` (eq. 9); ``x_enh_I = (1 - W) x_I + x_ngmm`` (eq. 10); ``Cat(x_enh_I, x_enh_V)``
    (eq. 11).

    Where the paper is silent (constructor arguments): "Dconv 7x7" is read as a depthwise 7x7 conv over the 2C
    channels of ``x_fpm`` followed by a 1x1 conv to ``gate_channels`` (C by default: one gate per channel; 1
    gives a single spatial gate); the channel attention has reduction ``ca_reduction``; the spatial attention
    a 7x7 kernel.

    Args:
        dim: channels C.
        gate_channels: channels of W, C or 1.
        ca_reduction: reduction of the channel attention's bottleneck.
    """

    def __init__(self, dim: int, gate_channels: int | None = None, ca_reduction: int = 4) -> None:
        super().__init__()
        gate_channels = dim if gate_channels is None else gate_channels
        if gate_channels not in (1, dim):
            raise ValueError(f"MICM: gate_channels must be 1 or dim={dim}, got {gate_channels}")
        self.ca = ChannelAttention(dim, ca_reduction)
        self.sa = SpatialAttention(7)
        self.gate = nn.Sequential(
            nn.Conv2d(2 * dim, 2 * dim, 7, padding=3, groups=2 * dim), nn.Conv2d(2 * dim, gate_channels, 1)
        )

    def forward(
        self, x_ir: torch.Tensor, x_vis: torch.Tensor, x_ngmm: torch.Tensor, x_camn: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(x_micm, W)``: (B, 2C, H, W) features and the (B, gate_channels, H, W) gate in (0, 1)."""
        x_sum = x_ir + x_vis  # eq. 6
        x_fpm = torch.cat((x_sum * self.sa(x_sum) + x_sum * self.ca(x_sum), x_sum), dim=1)  # eq. 7
        gate = torch.sigmoid(self.gate(x_fpm))  # eq. 8
        x_enh_vis = gate * x_vis + x_camn  # eq. 9
        x_enh_ir = (1 - gate) * x_ir + x_ngmm  # eq. 10
        return torch.cat((x_enh_ir, x_enh_vis), dim=1), gate  # eq. 11


# ----------------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------------
class PoMAI(FusionModel):
    """PoMAI fusion network (IJCAI 2025).

    Args:
        dim: feature channels C (paper silent; 64 for ``pomai``).
        encoder_blocks: Restormer blocks in the encoder (four in the paper).
        decoder_blocks: Restormer blocks in the decoder ("mirroring the encoder": four).
        num_heads: MDTA heads (paper silent).
        ffn_expansion: GDFN hidden width as a multiple of C (paper silent; 2 as in CDDFuse's Restormer blocks).
        group_size: K of the NGMM (paper silent).
        n_hashes: LSH rounds of the NGMM (paper silent).
        max_buckets: upper bound on the LSH buckets.
        attend_neighbours: NGMM groups also attend to the adjacent groups.
        dilation: dilation of the CAMN's 7x7 conv (paper silent).
        gate_channels: channels of the MICM gate W, C (None) or 1.
        use_ngmm: False is ablation I of Table 2 (x_ngmm = x_enc^I).
        use_camn: False is ablation II (x_camn = x_enc^V).
        use_micm: False is ablation III (the stage-one network only, eq. 12 at all times).
        lsh_seed: seed of the eval-mode LSH rotations.
        stride: 1 (paper) processes features at full resolution; ``s > 1`` folds s x s patches into channels
            (pixel-unshuffle) before the encoder and unfolds them in the decoder head, so every module runs on
            s**2 times fewer positions (``pomai_cpu``: 4, 4x4 patches at 1/4 resolution). Inputs whose sides are
            not multiples of ``stride`` are reflection-padded and cropped back internally.
        detail_skip: a full-resolution 3x3 conv of [ir, vis] added to the decoder's output logits (CPU variant
            only, see :class:`Decoder`).
        detail_hidden: width of the decoder's nonlinear full-resolution refinement (0: none; see
            :class:`Decoder`).
        source_blend: the output is a per-pixel softmax mix of ir, vis and the decoded image (not in the
            paper; see :class:`Decoder`); the sources' weights are ``maps["blend_ir"]`` and ``maps["blend_vis"]``.
        blend_bias: initial logit of the decoded image's weight in that mix.

    Forward:
        ``model(ir, vis)`` with (B, 1, H, W) inputs in [0, 1], any H, W, returns the fused (B, 1, H, W) in
        [0, 1]. With ``return_maps=True`` also returns ``{"gate": W averaged over channels}`` (the visible
        weight of eq. 9; 1 - gate weights the infrared, eq. 10) when the MICM is in use, else ``{}``.

    Stages (:meth:`set_stage`): "stage1" decodes Cat(x_ngmm, x_camn) (eq. 12); "stage2", "joint" and "final"
    decode the MICM output (eq. 13). Freezing is the trainer's job; the stage only selects the path.
    """

    pad_multiple = 1

    def __init__(
        self,
        dim: int = 64,
        encoder_blocks: int = 4,
        decoder_blocks: int = 4,
        num_heads: int = 8,
        ffn_expansion: float = 2.0,
        group_size: int = 144,
        n_hashes: int = 4,
        max_buckets: int = 128,
        attend_neighbours: bool = True,
        dilation: int = 3,
        gate_channels: int | None = None,
        use_ngmm: bool = True,
        use_camn: bool = True,
        use_micm: bool = True,
        lsh_seed: int = 0,
        stride: int = 1,
        detail_skip: bool = False,
        detail_hidden: int = 0,
        source_blend: bool = False,
        blend_bias: float = 2.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        if stride < 1:
            raise ValueError(f"PoMAI: stride must be >= 1, got {stride}")
        self.stride = stride
        self.pad_multiple = stride
        self.encoder = SharedEncoder(dim, encoder_blocks, num_heads, ffn_expansion, stride)
        self.ngmm = NGMM(dim, group_size, n_hashes, max_buckets, attend_neighbours, seed=lsh_seed) if use_ngmm else None
        self.camn = CAMN(dim, dilation) if use_camn else None
        self.micm = MICM(dim, gate_channels) if use_micm else None
        self.decoder = Decoder(dim, decoder_blocks, num_heads, ffn_expansion, stride, detail_skip, detail_hidden,
                               source_blend, blend_bias)
        self.stage = "final"
        #: run the convolutions in channels-last layout (same result, several times faster on CPU).
        self.channels_last = True

    def set_stage(self, name: str) -> None:
        """Select the decoder's input: "stage1" (eq. 12) or "stage2" / "joint" / "final" (eq. 13)."""
        if name not in STAGES:
            raise ValueError(f"PoMAI.set_stage: unknown stage '{name}', expected one of {STAGES}")
        self.stage = name

    @property
    def uses_micm(self) -> bool:
        """Whether the current stage decodes the MICM output (eq. 13)."""
        return self.micm is not None and self.stage != "stage1"

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, return_maps: bool = False):
        check_inputs(ir, vis)
        b = ir.shape[0]
        pair, size = pad_to_multiple(torch.cat((ir, vis), dim=0), self.stride)
        if self.channels_last:
            pair = pair.contiguous(memory_format=torch.channels_last)
        x_ir, x_vis = self.encoder(pair).split(b, dim=0)  # eq. 1, shared weights
        images = torch.cat(pair.split(b, dim=0), dim=1) if self.decoder.detail is not None else None
        x_ngmm = self.ngmm(x_ir) if self.ngmm is not None else x_ir  # Section 3.3
        x_camn = self.camn(x_vis) if self.camn is not None else x_vis  # Section 3.4
        maps: dict[str, torch.Tensor] = {}
        if self.uses_micm:
            x_micm, gate = self.micm(x_ir, x_vis, x_ngmm, x_camn)  # eq. 6-11
            fused, blend = self.decoder(x_micm, images, return_blend=True)  # eq. 13
            maps["gate"] = F.interpolate(gate.mean(dim=1, keepdim=True), scale_factor=self.stride, mode="nearest")
            maps["gate"] = crop_to(maps["gate"], size)
        else:
            fused, blend = self.decoder(torch.cat((x_ngmm, x_camn), dim=1), images, return_blend=True)  # eq. 12
        fused = crop_to(fused, size)
        if return_maps and blend is not None:
            blend = crop_to(blend, size)
            maps["blend_ir"], maps["blend_vis"] = blend[:, 0:1], blend[:, 1:2]
        return (fused, maps) if return_maps else fused


# ----------------------------------------------------------------------------------------------------------------
# Registered variants
# ----------------------------------------------------------------------------------------------------------------
@register_model(name="pomai")
def pomai(**kwargs) -> PoMAI:
    """PoMAI at paper size (widths chosen: C=64, 8 heads, K=144, 4 hash rounds; the paper gives none)."""
    cfg = {"dim": 64, "encoder_blocks": 4, "decoder_blocks": 4, "num_heads": 8, "group_size": 144, "n_hashes": 4}
    cfg.update(kwargs)
    return PoMAI(**cfg)


@register_model(name="pomai_cpu")
def pomai_cpu(**kwargs) -> PoMAI:
    """PoMAI small CPU variant (C=16 on 4x4-folded pixels, 2+2 blocks, K=64) with a full-resolution detail
    path (``detail_skip``), an 8-channel nonlinear refinement on it (``detail_hidden=8``) and the source-blend
    output (``source_blend``: a per-pixel softmax mix of ir, vis and the decoded image)."""
    cfg = {
        "dim": 16,
        "encoder_blocks": 2,
        "decoder_blocks": 2,
        "num_heads": 2,
        "ffn_expansion": 2.0,
        "group_size": 64,
        "n_hashes": 1,
        "stride": 4,
        "detail_skip": True,
        "detail_hidden": 8,
        "source_blend": True,
    }
    cfg.update(kwargs)
    return PoMAI(**cfg)


@register_model(name="pomai_mid")
def pomai_mid(**kwargs) -> PoMAI:
    """PoMAI, mid-size variant: ``pomai_cpu`` with 4+4 Restormer blocks (not 2+2). Every ``pomai_cpu``
    tensor keeps its name and shape, so it grows from those weights (``--init-from pomai_cpu --init-partial``)."""
    return pomai_cpu(**{"encoder_blocks": 4, "decoder_blocks": 4, **kwargs})
