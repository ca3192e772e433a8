"""FGFusion: a foreground-guided fusion network for infrared and visible images.

Chen, Feng, Wang, Li, "A Foreground-Guided Fusion Network for Infrared and Visible Images",
Journal of Beijing Institute of Technology, 2026 (doi:10.15918/j.jbit1004-0579.2025.080).

Two branches share a ResNet-style backbone (eq. 1). The fusion branch keeps full resolution:
shallow features of both modalities pass through a dense reconstruction module of invertible
coupling layers (eq. 2) and a residual fidelity module that ends in ``(tanh + 1) / 2`` (eq. 6).
The foreground extraction branch works at 1/4 resolution: deep features are refined by a dense
block and mixed by self- and cross-attention (eq. 3) into a semantic feature ``S``, which
predicts a foreground probability map upsampled by 4 (eq. 7) and modulates the fusion features
through a learned scale and shift (eq. 4-5). The loss (eq. 8-11) is
:class:`ivfuse.losses.papers.FGFusionLoss`, registered as ``"fgfusion"`` by
:mod:`ivfuse.train.recipe_fgfusion` (loaded by every run, new or resumed). The dense block and
the attention blocks live in :mod:`ivfuse.models.blocks`.

Where the paper is silent (it gives no widths, depths, normalisations or attention form), the
choices below are constructor arguments, documented on :class:`FGFusion`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..infer import crop_to, pad_to_multiple
from .base import FusionModel, check_inputs
from .blocks import ChannelLayerNorm, DenseBlock, ModalityAttention
from .registry import register_model

__all__ = [
    "Backbone", "CouplingLayer", "DenseBlock", "DenseReconstruction", "FGFusion", "ForegroundHead", "ModalityAttention",
    "MID_CHANGES", "ResidualBlock", "ResidualFidelity", "SemanticExtraction", "SemanticInjection", "fgfusion",
    "fgfusion_cpu", "fgfusion_mid",
]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return ChannelLayerNorm(channels, 1e-6, rsqrt=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'layer' or 'none', got '{kind}'")


class ResidualBlock(nn.Module):
    """ResNet basic block (ReB): ``x + conv(act(norm(conv(x))))``, shape-preserving.

    Args:
        channels: C of the (B, C, H, W) input and output.
        norm: "batch" (ResNet), "layer" or "none".
    """

    def __init__(self, channels: int, norm: str = "none") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Backbone(nn.Module):
    """Dual-output ResNet-style feature extractor, eq. (1).

    SFEB: a 7x7 convolution then residual blocks, no downsampling -> (B, C, H, W).
    DFEB: two 3x3 stride-2 convolutions (as ResNet's stem reaches 1/4 before its first stage),
    then residual blocks -> (B, C_deep, H/4, W/4) (H, W multiples of 4; :class:`FGFusion` pads).
    Only the 7x7 stem pads by reflection; the other convolutions zero-pad (cheaper on CPU).

    Args:
        dim: SFEB width C.
        deep_dim: DFEB output width.
        shallow_blocks: residual blocks in SFEB.
        deep_blocks: residual blocks of DFEB at 1/4 resolution.
        norm: normalisation inside the blocks.
        deep_from_shallow: the paper writes DFEB(I) but draws one dual-output backbone; True runs
            DFEB on the SFEB features (one trunk, two outputs), False gives DFEB its own 7x7 stem.
        with_deep: build DFEB at all (False for the "without extraction branch" ablation).
    """

    def __init__(self, dim: int, deep_dim: int, shallow_blocks: int = 1, deep_blocks: int = 1, norm: str = "none",
                 deep_from_shallow: bool = True, with_deep: bool = True) -> None:
        super().__init__()
        self.sfeb = nn.Sequential(
            nn.Conv2d(1, dim, 7, padding=3, padding_mode="reflect"),
            nn.ReLU(inplace=True),
            *[ResidualBlock(dim, norm) for _ in range(shallow_blocks)],
        )
        self.deep_from_shallow = deep_from_shallow
        self.dfeb: nn.Module | None = None
        if with_deep:
            mid = max(dim, deep_dim // 2)
            stem = [] if deep_from_shallow else [nn.Conv2d(1, dim, 7, padding=3, padding_mode="reflect"),
                                                 nn.ReLU(inplace=True)]
            self.dfeb = nn.Sequential(
                *stem,
                nn.Conv2d(dim, mid, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(mid, deep_dim, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                *[ResidualBlock(deep_dim, norm) for _ in range(deep_blocks)],
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 1, H, W) -> shallow (B, C, H, W) and deep (B, C_deep, H/4, W/4) or None."""
        s = self.sfeb(x)
        if self.dfeb is None:
            return s, None
        return s, self.dfeb(s if self.deep_from_shallow else x)


class CouplingLayer(nn.Module):
    """Cross-modal invertible coupling layer, eq. (2).

    Two readings of the second line, chosen by ``form``:

    - ``"invertible"``: ``vi' = vi + R1(ir)``; ``ir' = ir * sigmoid(R2(vi')) + R3(vi')``. Using the
      updated ``vi'`` is what makes the layer a bijection (see :meth:`inverse`), as in the INN of
      Ardizzone et al. that the paper cites.
    - ``"literal"``: eq. (2) as printed, ``ReB(I_vi^s)`` (the input ``vi``) in both terms of the
      second line: ``ir' = ir * sigmoid(R2(vi)) + R3(vi)``. No closed-form inverse.

    R1-R3 are residual blocks; both forms have the same parameters, so weights carry over.

    Args:
        channels: C of each modality's features.
        norm: normalisation inside the residual blocks.
        form: "invertible" or "literal".
    """

    def __init__(self, channels: int, norm: str = "none", form: str = "invertible") -> None:
        super().__init__()
        if form not in ("invertible", "literal"):
            raise ValueError(f"coupling form must be 'invertible' or 'literal', got {form!r}")
        self.form = form
        self.shift_vi = ResidualBlock(channels, norm)
        self.scale_ir = ResidualBlock(channels, norm)
        self.shift_ir = ResidualBlock(channels, norm)

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vi_new = vi + self.shift_vi(ir)  # eq. (2), first line
        cond = vi_new if self.form == "invertible" else vi
        ir = ir * torch.sigmoid(self.scale_ir(cond)) + self.shift_ir(cond)  # eq. (2), second line
        return ir, vi_new

    def inverse(self, ir: torch.Tensor, vi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Recover the inputs from the outputs of :meth:`forward` (the invertible form only)."""
        if self.form != "invertible":
            raise ValueError("the literal form of eq. (2) has no closed-form inverse; use form='invertible'")
        ir = (ir - self.shift_ir(vi)) / torch.sigmoid(self.scale_ir(vi))
        vi = vi - self.shift_vi(ir)
        return ir, vi


class DenseReconstruction(nn.Module):
    """Dense reconstruction module (DRM): stacked coupling layers, then a merge to F.

    How the two modality streams become one feature map F is not stated; a 3x3 convolution on
    their concatenation is used. With ``interaction=False`` (the "w/o FE" ablation) the coupling
    layers are replaced by a dense block on the concatenated shallow features.

    Args:
        channels: C per modality and of F.
        layers: number of coupling layers.
        norm: normalisation inside the residual blocks.
        interaction: use the invertible coupling layers (True) or a dense block (False).
        coupling: the coupling layers' reading of eq. (2), "invertible" or "literal".
    """

    def __init__(self, channels: int, layers: int = 2, norm: str = "none", interaction: bool = True,
                 coupling: str = "invertible") -> None:
        super().__init__()
        self.interaction = interaction
        if interaction:
            self.couplings = nn.ModuleList(CouplingLayer(channels, norm, coupling) for _ in range(layers))
            self.merge = nn.Conv2d(2 * channels, channels, 3, padding=1)
        else:
            self.dense = DenseBlock(2 * channels, channels, growth=channels, layers=max(layers, 1))

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        """Two (B, C, H, W) maps -> F, (B, C, H, W)."""
        if not self.interaction:
            return self.dense(torch.cat((ir, vi), 1))
        for layer in self.couplings:
            ir, vi = layer(ir, vi)
        return self.merge(torch.cat((ir, vi), 1))


class SemanticExtraction(nn.Module):
    """Semantic extraction module (SEM) with multimodal attention, eq. (3).

    Both deep feature maps are first refined by a dense block (DeB, shared by the modalities),
    then ``ir_se = Self(ir_D)``, ``vi_ce = Cross(vi_D, ir_se)``, ``vi_se = Self(vi_ce)``,
    ``S = Cross(ir_se, vi_se)``. With ``interaction=False`` (the "w/o FE" ablation) the attention
    is replaced by a dense block on the concatenated refined features.

    Args:
        dim: deep feature channels.
        heads, kind, pool: see :class:`ModalityAttention`.
        dense_layers, growth: the dense block.
        interaction: use attention (True) or dense connections (False).
    """

    def __init__(self, dim: int, heads: int = 2, kind: str = "spatial", pool: int = 8, dense_layers: int = 3,
                 growth: int = 16, interaction: bool = True) -> None:
        super().__init__()
        self.refine = DenseBlock(dim, dim, growth=growth, layers=dense_layers)
        self.interaction = interaction
        if interaction:
            def att(cross: bool) -> ModalityAttention:
                return ModalityAttention(dim, heads=heads, kind=kind, pool=pool, cross=cross)

            self.self_ir, self.cross_vi, self.self_vi, self.cross_out = att(False), att(True), att(False), att(True)
        else:
            self.dense = DenseBlock(2 * dim, dim, growth=growth, layers=dense_layers)

    def forward(self, ir_p: torch.Tensor, vi_p: torch.Tensor) -> torch.Tensor:
        """Two (B, C, h, w) deep maps -> S, (B, C, h, w)."""
        ir_d, vi_d = self.refine(ir_p), self.refine(vi_p)
        if not self.interaction:
            return self.dense(torch.cat((ir_d, vi_d), 1))
        ir_se = self.self_ir(ir_d)  # eq. (3), line 1
        vi_ce = self.cross_vi(vi_d, ir_se)  # line 2
        vi_se = self.self_vi(vi_ce)  # line 3
        return self.cross_out(ir_se, vi_se)  # line 4: S


class SemanticInjection(nn.Module):
    """Semantic injection module (SIM), eq. (4-5): ``F_u = gamma * Norm(F) + beta``.

    ``gamma`` and ``beta`` come from ``Conv_{gamma/beta}(ReLU(Conv(S)))`` (eq. 5), computed at the
    resolution of S and upsampled bilinearly to F's (cheaper than upsampling S first; the paper
    does not say). ``gamma`` is parametrised as ``1 + Conv_gamma(...)`` so that at initialisation
    the module passes the normalised features through. Norm has no affine parameters (they are
    what gamma and beta provide); its kind is a choice: BatchNorm by default (as in SPADE; it
    keeps each pixel's contrast to the others, which a per-pixel LayerNorm would remove, and it
    does not depend on the image size at inference, unlike InstanceNorm).

    Args:
        channels: channels of F.
        semantic_channels: channels of S.
        hidden: width of the shared convolution.
        norm: "batch" (no affine), "layer" or "instance".
    """

    def __init__(self, channels: int, semantic_channels: int, hidden: int = 32, norm: str = "batch") -> None:
        super().__init__()
        if norm == "layer":
            self.norm: nn.Module = ChannelLayerNorm(channels, 1e-6, affine=False, rsqrt=False)
        elif norm == "batch":
            self.norm = nn.BatchNorm2d(channels, affine=False)
        elif norm == "instance":
            self.norm = nn.InstanceNorm2d(channels, affine=False)
        else:
            raise ValueError(f"SemanticInjection: norm must be 'layer', 'batch' or 'instance', got '{norm}'")
        self.shared = nn.Sequential(nn.Conv2d(semantic_channels, hidden, 3, padding=1),
                                    nn.ReLU(inplace=True))
        self.to_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.to_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, f: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """F (B, C, H, W) and S (B, C_s, H/4, W/4) -> F_u (B, C, H, W)."""
        h = self.shared(s)  # eq. (5)
        gamma = 1 + self.to_gamma(h)
        beta = self.to_beta(h)
        if gamma.shape[-2:] != f.shape[-2:]:
            gamma = F.interpolate(gamma, size=f.shape[-2:], mode="bilinear", align_corners=False)
            beta = F.interpolate(beta, size=f.shape[-2:], mode="bilinear", align_corners=False)
        return gamma * self.norm(f) + beta  # eq. (4)


class ResidualFidelity(nn.Module):
    """Residual fidelity module (RFM): residual blocks, then ``(tanh(Conv(.)) + 1) / 2``, eq. (6).

    With ``source_blend=True`` (an option of the CPU variant, not in the paper) a second 3x3 convolution
    on the same features gives per-pixel softmax weights ``(w_i, w_v, w_r)`` and the output is
    ``w_i * I + w_v * V + w_r * R``, R the eq. (6) reconstruction: a convex mix of the two sources and
    the reconstruction, in [0, 1] like R, that can copy a source's pixels where the reconstruction
    would smooth them. Its weights start at zero and its bias at ``(0, 0, blend_bias)``, so a network
    grown onto eq. (6) weights (``--init-partial``) starts close to its reconstruction.

    Args:
        channels: channels of F_u.
        blocks: residual blocks before the output convolution (the paper gives no count).
        norm: normalisation inside the residual blocks.
        source_blend: add the source-blend output described above.
        blend_bias: initial logit of the reconstruction's weight (2: w_r = 0.79 at the start).
    """

    def __init__(self, channels: int, blocks: int = 1, norm: str = "none", source_blend: bool = False,
                 blend_bias: float = 2.0) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResidualBlock(channels, norm) for _ in range(blocks)])
        self.out = nn.Conv2d(channels, 1, 3, padding=1)
        self.mix: nn.Conv2d | None = None
        if source_blend:
            self.mix = nn.Conv2d(channels, 3, 3, padding=1)
            nn.init.zeros_(self.mix.weight)
            with torch.no_grad():
                self.mix.bias.copy_(torch.tensor([0.0, 0.0, float(blend_bias)]))

    def forward(self, fu: torch.Tensor, ir: torch.Tensor | None = None,
                vis: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, H, W) -> (fused (B, 1, H, W) in [0, 1], the blend weights (B, 3, H, W) or None).

        ``ir`` and ``vis`` (B, 1, H, W) are needed with ``source_blend``.
        """
        h = self.blocks(fu)
        recon = (torch.tanh(self.out(h)) + 1) / 2  # eq. (6)
        if self.mix is None:
            return recon, None
        if ir is None or vis is None:
            raise ValueError("ResidualFidelity(source_blend=True) needs the sources ir and vis")
        w = torch.softmax(self.mix(h), dim=1)
        return w[:, 0:1] * ir + w[:, 1:2] * vis + w[:, 2:3] * recon, w


class ForegroundHead(nn.Module):
    """Foreground head, eq. (7): ``I_ex = up4(Conv(S))`` with a stride-4 transposed convolution.

    Returns logits; the probability is their sigmoid.

    Args:
        channels: channels of S.
        hidden: channels after the 3x3 convolution.
    """

    def __init__(self, channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1),
                                  nn.ReLU(inplace=True))
        self.up = nn.ConvTranspose2d(hidden, 1, kernel_size=4, stride=4)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> logits (B, 1, 4h, 4w)."""
        return self.up(self.conv(s))


class FGFusion(FusionModel):
    """Foreground-guided fusion network.

    ``model(ir, vis)`` -> fused (B, 1, H, W) in [0, 1]; with ``return_maps=True`` also
    ``{"foreground": (B, 1, H, W) probability}`` (absent when ``extraction=False``). Any H, W >= 1
    works: inputs are padded by reflection to a multiple of 4 and outputs cropped back. The
    foreground logits of the last forward pass are kept in ``self.last_foreground_logits`` for a
    numerically stable BCE.

    Args:
        dim: width C of the full-resolution (shallow) features. Paper: not given.
        deep_dim: width of the 1/4-resolution (deep) features. Paper: not given.
        shallow_blocks: residual blocks in SFEB after the 7x7 convolution.
        deep_blocks: residual blocks of DFEB at 1/4 resolution.
        inn_layers: coupling layers in the DRM (the paper stacks "multiple").
        heads: attention heads in the SEM.
        attention: "spatial" (pooled keys) or "channel"; see :class:`ModalityAttention`.
        attention_pool: key/value grid side of "spatial" attention.
        dense_layers, growth: the SEM dense block(s).
        fidelity_blocks: residual blocks in the RFM.
        injection_hidden: hidden width of the SIM convolution; defaults to ``deep_dim // 2``.
        head_hidden: hidden width of the foreground head; defaults to ``deep_dim // 2``.
        norm: normalisation in the residual blocks ("none", "batch" as in ResNet, "layer").
        injection_norm: Norm of eq. (4): "batch", "layer" or "instance".
        deep_from_shallow: see :class:`Backbone`.
        extraction: keep the foreground extraction branch (False = Table 5 "w/o Ex": no DFEB,
            SEM, SIM or head; the fusion features go straight to the RFM).
        interaction: keep the INN and attention (False = Table 5 "w/o FE": both replaced by
            dense connections).
        coupling: eq. (2)'s reading in the coupling layers: "invertible" (the CPU variant's) or
            "literal" (as printed; the paper variant's default). See :class:`CouplingLayer`.
        source_blend: the RFM's output mixes the sources and its reconstruction per pixel (not in
            the paper; see :class:`ResidualFidelity`); the sources' weights are ``maps["blend_ir"]`` and
            ``maps["blend_vis"]``.
        blend_bias: initial logit of the reconstruction's weight in that mix.
    """

    pad_multiple = 4

    def __init__(
        self,
        dim: int = 32,
        deep_dim: int = 128,
        shallow_blocks: int = 2,
        deep_blocks: int = 2,
        inn_layers: int = 3,
        heads: int = 4,
        attention: str = "spatial",
        attention_pool: int = 16,
        dense_layers: int = 3,
        growth: int = 32,
        fidelity_blocks: int = 2,
        injection_hidden: int | None = None,
        head_hidden: int | None = None,
        norm: str = "none",
        injection_norm: str = "batch",
        deep_from_shallow: bool = True,
        extraction: bool = True,
        interaction: bool = True,
        coupling: str = "invertible",
        source_blend: bool = False,
        blend_bias: float = 2.0,
    ) -> None:
        super().__init__()
        self.extraction, self.interaction = extraction, interaction
        self.backbone = Backbone(dim, deep_dim, shallow_blocks, deep_blocks, norm, deep_from_shallow,
                                 with_deep=extraction)
        self.drm = DenseReconstruction(dim, inn_layers, norm, interaction, coupling)
        if extraction:
            self.sem = SemanticExtraction(deep_dim, heads, attention, attention_pool, dense_layers, growth, interaction)
            self.sim = SemanticInjection(dim, deep_dim, injection_hidden or deep_dim // 2, injection_norm)
            self.head = ForegroundHead(deep_dim, head_hidden or deep_dim // 2)
        self.rfm = ResidualFidelity(dim, fidelity_blocks, norm, source_blend, blend_bias)
        self.last_foreground_logits: torch.Tensor | None = None

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        # Reflect (bottom/right) to a multiple of 4 so the 1/4 branch meets the full-resolution one.
        return pad_to_multiple(x, self.pad_multiple)[0]

    def set_stage(self, name: str) -> None:
        """Training-stage hook; FGFusion trains in one joint stage, so nothing changes."""

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, return_maps: bool = False):
        """Fuse a pair.

        Args:
            ir: infrared, (B, 1, H, W) in [0, 1].
            vis: visible luminance, (B, 1, H, W) in [0, 1].
            return_maps: also return ``{"foreground": (B, 1, H, W) in [0, 1]}`` (and ``"blend_ir"``,
                ``"blend_vis"``, the sources' weights in the output, with ``source_blend``).

        Returns:
            fused (B, 1, H, W) in [0, 1], or ``(fused, maps)``.
        """
        check_inputs(ir, vis)
        size = ir.shape[-2:]
        ir, vis = self._pad(ir), self._pad(vis)
        ir_s, ir_p = self.backbone(ir)  # eq. (1)
        vi_s, vi_p = self.backbone(vis)
        f = self.drm(ir_s, vi_s)  # eq. (2)
        maps: dict[str, torch.Tensor] = {}
        if self.extraction:
            s = self.sem(ir_p, vi_p)  # eq. (3)
            f = self.sim(f, s)  # eq. (4-5)
            logits = crop_to(self.head(s), size)  # eq. (7)
            self.last_foreground_logits = logits
            maps["foreground"] = torch.sigmoid(logits)
        fused, weights = self.rfm(f, ir, vis)  # eq. (6)
        fused = crop_to(fused, size)
        if weights is not None:
            weights = crop_to(weights, size)
            maps["blend_ir"], maps["blend_vis"] = weights[:, 0:1], weights[:, 1:2]
        return (fused, maps) if return_maps else fused


# Sizes the paper does not give. "paper": ResNet-like widths for 256x256 crops on a GPU.
# "cpu": fuses a 640x480 pair well under a second on two cores, weights well under 1 MB.
PAPER_CONFIG = {"dim": 32, "deep_dim": 128, "shallow_blocks": 2, "deep_blocks": 2, "inn_layers": 3, "heads": 4,
                "attention_pool": 16, "dense_layers": 3, "growth": 32, "fidelity_blocks": 2, "coupling": "literal"}
CPU_CONFIG = {"dim": 8, "deep_dim": 24, "shallow_blocks": 1, "deep_blocks": 1, "inn_layers": 2, "heads": 2,
              "attention_pool": 8, "dense_layers": 2, "growth": 8, "fidelity_blocks": 1, "source_blend": True}
#: "mid": what ``fgfusion_mid`` changes in CPU_CONFIG (deeper, the same widths).
MID_CHANGES = {"inn_layers": 3, "deep_blocks": 3}


@register_model(name="fgfusion")
def fgfusion(**kwargs) -> FGFusion:
    """FGFusion (JBIT 2026), paper-size variant: foreground-guided fusion with a foreground map."""
    return FGFusion(**{**PAPER_CONFIG, **kwargs})


@register_model(name="fgfusion_cpu")
def fgfusion_cpu(**kwargs) -> FGFusion:
    """FGFusion, small CPU variant (widths 8/24, the source-blend output), trained on RoadScene + MSRS;
    returns a foreground map."""
    return FGFusion(**{**CPU_CONFIG, **kwargs})


@register_model(name="fgfusion_mid")
def fgfusion_mid(**kwargs) -> FGFusion:
    """FGFusion, mid-size variant: ``fgfusion_cpu`` with 3 coupling layers (not 2) and 3 deep residual blocks
    (not 1). Every ``fgfusion_cpu`` tensor keeps its name and shape, so it grows from those weights
    (``--init-from fgfusion_cpu --init-partial``)."""
    return FGFusion(**{**CPU_CONFIG, **MID_CHANGES, **kwargs})
