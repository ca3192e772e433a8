"""FusionNet: modality-aware infrared-visible fusion with pixel-wise alpha blending.

Sun et al., "Modality-Aware Infrared and Visible Image Fusion with Target-Aware Supervision",
arXiv:2509.11476 (2025). The paper names the components (Section III) but gives neither sizes
nor exact formulas; the numbered equations below are ours, written from its description, and
every choice the paper leaves open is a constructor argument:

* Two-stream encoder (Sec. III.A): one convolutional stream per modality, ``len(widths)``
  scales, each scale after the first halving H and W with a stride-2 convolution (choice:
  plain residual conv blocks, LeakyReLU; separate weights per stream, ``share_encoder=False``).
* Modality attention (Sec. III.B), at every scale s::

      a_s = sigmoid(g_s([F_ir_s, F_vis_s]))                       (1)
      F_s = a_s * F_ir_s + (1 - a_s) * F_vis_s                     (2)

  where g_s is a depthwise k x k convolution over the concatenated features (the "context";
  choice: k = ``attn_kernel``) followed by a 1x1 -> LeakyReLU -> 1x1 to one channel. a_s is the
  per-location weight of infrared against visible; a_0 (full resolution) is returned as the
  ``attention`` map.
* Multi-scale decoder (Sec. III.A): U-Net style, bilinear upsampling, the attention-fused
  skip features F_s concatenated and mixed by a 1x1 convolution, then residual blocks::

      D_S = F_S;  D_s = blocks_s(conv1x1([up(D_{s+1}), F_s]))     (3)

* Pixel-wise alpha blending (Sec. III.C). The paper's component map puts it between the
  attention and the decoder (Encoder -> Modality Attention -> Alpha Blending -> Decoder) and says
  it "combines these weighted features"; that reading, ``blend_space="feature"``, is the default
  of the paper-size variant. At every scale the attention weights each stream, a pixel-wise
  alpha map is predicted from the two weighted streams, and their alpha blend is what the
  decoder receives; the decoder's head writes the fused image::

      W_ir_s = a_s * F_ir_s,  W_vis_s = (1 - a_s) * F_vis_s                    (2')
      alpha_s = sigmoid(b_s([W_ir_s, W_vis_s]))                               (4')
      F_s = alpha_s * W_ir_s + (1 - alpha_s) * W_vis_s                          (5')
      fused = sigmoid(h(D_0))                                                 (6')

  with b_s a 3x3 convolution to one channel; ``alpha`` returned is alpha_0.
  The other reading, ``blend_space="pixel"`` (the CPU variant's), keeps Eq. (2) and blends the
  source images after the decoder, so alpha is literally the infrared share of each output
  pixel: a head on D_0 predicts the alpha map and (``residual_scale > 0``) a bounded detail
  residual::

      alpha = sigmoid(h_a(D_0))                                    (4)
      fused = clamp(alpha * ir + (1 - alpha) * vis + r * tanh(h_r(D_0)), 0, 1)   (5)

  With ``residual_scale = 0`` the output is a pure convex blend of the two inputs.
* Ablation switches (the paper's component ablations): ``attention=False`` drops Eq. (1), the
  streams enter unweighted (a_s = 1/2 in Eq. (2), W = F in Eq. (2')); ``alpha_blend=False``
  drops the alpha blend: features are summed (F_s = W_ir_s + W_vis_s) and the decoder's head
  writes the image, in either blend space.

The target-aware loss (Sec. III.D) lives in :mod:`ivfuse.train.recipe_fusionnet`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..filters import gaussian_blur, safe_pad
from .base import FusionModel, check_inputs
from .registry import register_model

__all__ = ["AlphaBlending", "EncoderStream", "FeatureAlphaBlending", "FusionNet", "ModalityAttention", "ResidualBlock"]


def _act(slope: float) -> nn.Module:
    return nn.LeakyReLU(slope, inplace=True)


def _conv3x3(channels: int, separable: bool) -> nn.Module:
    if not separable:
        return nn.Conv2d(channels, channels, 3, padding=1)
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels), nn.Conv2d(channels, channels, 1))


class ResidualBlock(nn.Module):
    """``x + conv3x3(act(conv3x3(x)))``; (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        slope: LeakyReLU negative slope.
        separable: depthwise 3x3 + pointwise 1x1 instead of each full 3x3 (about 9x cheaper at C = 16).
    """

    def __init__(self, channels: int, slope: float = 0.1, separable: bool = False) -> None:
        super().__init__()
        self.conv1 = _conv3x3(channels, separable)
        self.act = _act(slope)
        self.conv2 = _conv3x3(channels, separable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class EncoderStream(nn.Module):
    """One modality's encoder: a feature pyramid from a single-channel image.

    Args:
        widths: channels per scale; scale s has resolution H / 2**s.
        blocks: residual blocks per scale (same length as ``widths``).
        slope: LeakyReLU negative slope.
        separable: depthwise-separable residual blocks.

    Shapes:
        input (B, 1, H, W) with H, W divisible by 2**(len(widths)-1);
        output list of (B, widths[s], H / 2**s, W / 2**s).
    """

    def __init__(
        self, widths: Sequence[int], blocks: Sequence[int], slope: float = 0.1, separable: bool = False
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths and blocks must have the same length, got {len(widths)} and {len(blocks)}")
        stages = []
        for s, (c, n) in enumerate(zip(widths, blocks)):
            cin = 1 if s == 0 else widths[s - 1]
            entry = nn.Conv2d(cin, c, 3, stride=1 if s == 0 else 2, padding=1)
            stages.append(nn.Sequential(entry, _act(slope), *[ResidualBlock(c, slope, separable) for _ in range(n)]))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class ModalityAttention(nn.Module):
    """Per-location weight of infrared against visible features from their local context, Eqs. (1)-(2).

    Args:
        channels: C of each modality's features.
        kernel: side of the depthwise context window (odd).
        hidden: width of the 1x1 scoring layer (default: C).
        slope: LeakyReLU negative slope.

    Shapes:
        f_ir, f_vis: (B, C, h, w). Returns the fused features (B, C, h, w) and the attention
        map a (B, 1, h, w) in [0, 1] (1 = all infrared).
    """

    def __init__(self, channels: int, kernel: int = 5, hidden: int | None = None, slope: float = 0.1) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"attention kernel must be odd, got {kernel}")
        hidden = hidden or channels
        self.context = nn.Conv2d(2 * channels, 2 * channels, kernel, padding=kernel // 2, groups=2 * channels)
        self.score = nn.Sequential(nn.Conv2d(2 * channels, hidden, 1), _act(slope), nn.Conv2d(hidden, 1, 1))

    def forward(self, f_ir: torch.Tensor, f_vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.sigmoid(self.score(self.context(torch.cat((f_ir, f_vis), dim=1))))  # Eq. (1)
        return f_vis + a * (f_ir - f_vis), a  # Eq. (2): a * F_ir + (1 - a) * F_vis


class AlphaBlending(nn.Module):
    """Spatially varying alpha map and the pixel blend, Eqs. (4)-(5).

    Args:
        channels: C of the decoder's full-resolution features.
        residual_scale: bound r of the detail residual added after blending (0 disables it).
        image_context: 0 (off) or the width h of a small module that sees each source minus its
            image mean beside the features and corrects the alpha (and residual) logits: image-level
            brightness the convolutional receptive field alone does not reach.
        detail_sigma: 0 (off) or the sigma of a Gaussian that splits each source into a base layer B
            and a detail layer D = x - B. The base layers are blended by alpha and the detail layers
            by a second map beta: ``alpha * B_I + (1 - alpha) * B_V + beta * D_I + (1 - beta) * D_V``,
            so a region can take its brightness from one source and its texture from the other (an
            infrared-bright tree line with the visible leaves) instead of the whole pixel from one.
            beta's logit is alpha's plus a correction from a zero-initialised conv: at the start
            beta = alpha and the output is exactly the one-map blend, so it can be grown onto weights
            trained without it (``--init-partial``). Not in the paper.
        detail_gain: factor g on the blended detail layers (needs ``detail_sigma``):
            ``... + g * (beta * D_I + (1 - beta) * D_V)``; 1 keeps each source's texture at its own
            contrast, above 1 sharpens. Not in the paper.
        contrast_ratio: 0 (off) or r > 0 (needs ``detail_sigma``): both maps are multiplied by
            ``w = min(1, c_I / (r c_V))``, where ``c`` is each source's local contrast, the RMS of its
            detail layer over a Gaussian window of ``contrast_sigma``. Where the infrared has at least
            ``r`` times the visible image's local contrast the learned maps stand; where it is flatter
            (a low-contrast thermal camera, a uniform warm background at night) its share falls with the
            ratio, and a flat infrared region keeps the visible image: no grey plate of infrared
            brightness, and no seam where the plate ends. An inference setting: the returned maps are
            the ones applied. Not in the paper.
        contrast_sigma: the Gaussian window of ``contrast_ratio``'s local contrast (0: ``detail_sigma``).

    Shapes:
        feats (B, C, H, W); ir, vis (B, 1, H, W) in [0, 1]; ``means`` optionally the sources' image
        means (B, 1, 1, 1) each (default: of ``ir`` and ``vis`` as given). Returns fused (B, 1, H, W)
        in [0, 1] and alpha (B, 1, H, W) in [0, 1] (1 = the infrared pixel).
    """

    def __init__(self, channels: int, residual_scale: float = 0.25, image_context: int = 0,
                 detail_sigma: float = 0.0, detail_gain: float = 1.0, contrast_ratio: float = 0.0,
                 contrast_sigma: float = 0.0) -> None:
        super().__init__()
        if detail_sigma < 0:
            raise ValueError(f"detail_sigma must be >= 0, got {detail_sigma}")
        if detail_gain <= 0 or (detail_gain != 1.0 and not detail_sigma):
            raise ValueError(f"detail_gain must be > 0 and needs detail_sigma > 0, got {detail_gain}")
        if contrast_ratio < 0 or (contrast_ratio and not detail_sigma):
            raise ValueError(f"contrast_ratio must be >= 0 and needs detail_sigma > 0, got {contrast_ratio}")
        if contrast_sigma < 0:
            raise ValueError(f"contrast_sigma must be >= 0, got {contrast_sigma}")
        self.detail_sigma, self.detail_gain = float(detail_sigma), float(detail_gain)
        self.contrast_ratio = float(contrast_ratio)
        self.contrast_sigma = float(contrast_sigma or detail_sigma)
        self.detail_head: nn.Conv2d | None = None
        if self.detail_sigma > 0:
            self.detail_head = nn.Conv2d(channels, 1, 3, padding=1)
            nn.init.zeros_(self.detail_head.weight)
            nn.init.zeros_(self.detail_head.bias)
        self.residual_scale = float(residual_scale)
        n_out = 2 if self.residual_scale > 0 else 1
        self.head = nn.Conv2d(channels, n_out, 3, padding=1)
        nn.init.normal_(self.head.weight, std=1e-2)  # start near alpha = 0.5, no residual
        nn.init.zeros_(self.head.bias)
        if image_context < 0:
            raise ValueError(f"image_context must be >= 0, got {image_context}")
        self.context = None
        if image_context:
            # [features, I - mean(I), V - mean(V)] -> a correction of the head's outputs; the last conv
            # starts at zero, so the module can be grown onto weights trained without it.
            self.context = nn.Sequential(
                nn.Conv2d(channels + 2, image_context, 3, padding=1), nn.LeakyReLU(0.1),
                nn.Conv2d(image_context, n_out, 1),
            )
            nn.init.zeros_(self.context[-1].weight)
            nn.init.zeros_(self.context[-1].bias)

    def forward(
        self, feats: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor,
        means: tuple[torch.Tensor, torch.Tensor] | None = None,
        return_beta: bool = False,
    ):
        """Returns ``(fused, alpha)``, or ``(fused, alpha, beta)`` with ``return_beta`` (beta is None without
        ``detail_sigma``)."""
        out = self.head(feats)
        if self.context is not None:
            m_ir, m_vis = means if means is not None else (ir.mean((-2, -1), keepdim=True),
                                                            vis.mean((-2, -1), keepdim=True))
            out = out + self.context(torch.cat((feats, ir - m_ir, vis - m_vis), dim=1))
        alpha = torch.sigmoid(out[:, :1])  # Eq. (4)
        beta = None
        if self.detail_head is None:
            fused = vis + alpha * (ir - vis)  # Eq. (5), convex part
        else:
            src = torch.cat((ir, vis), dim=1)  # both sources through one filtering call
            base = gaussian_blur(src, self.detail_sigma)
            det = src - base
            (base_ir, base_vis), (det_ir, det_vis) = base.split(1, dim=1), det.split(1, dim=1)
            beta = torch.sigmoid(out[:, :1] + self.detail_head(feats))
            if self.contrast_ratio > 0:
                w = self.contrast_weight(det)
                alpha, beta = alpha * w, beta * w
            fused = base_vis + alpha * (base_ir - base_vis) + self.detail_gain * (det_vis + beta * (det_ir - det_vis))
        if self.residual_scale > 0:
            fused = fused + self.residual_scale * torch.tanh(out[:, 1:2])
        fused = fused.clamp(0.0, 1.0)
        return (fused, alpha, beta) if return_beta else (fused, alpha)

    def contrast_weight(self, det: torch.Tensor) -> torch.Tensor:
        """``w`` of ``contrast_ratio`` from the detail layers ``det`` (B, 2, H, W: infrared, visible), (B, 1, H, W)."""
        # + 1e-8 (a contrast of 1e-4): a finite gradient at 0, and w = 1 where both sources are flat
        c = (gaussian_blur(det * det, self.contrast_sigma) + 1e-8).sqrt()
        return (c[:, :1] / (self.contrast_ratio * c[:, 1:])).clamp(max=1.0)


class FeatureAlphaBlending(nn.Module):
    """Pixel-wise alpha blend of the two weighted feature streams at one scale, Eqs. (4')-(5').

    Args:
        channels: C of each stream.

    Shapes:
        w_ir, w_vis: (B, C, h, w). Returns the blended features (B, C, h, w) and alpha
        (B, 1, h, w) in [0, 1] (1 = the infrared stream).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Conv2d(2 * channels, 1, 3, padding=1)
        nn.init.normal_(self.score.weight, std=1e-2)  # start near alpha = 0.5
        nn.init.zeros_(self.score.bias)

    def forward(self, w_ir: torch.Tensor, w_vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = torch.sigmoid(self.score(torch.cat((w_ir, w_vis), dim=1)))  # Eq. (4')
        return w_vis + alpha * (w_ir - w_vis), alpha  # Eq. (5')


class FusionNet(FusionModel):
    """Two-stream encoder, modality attention per scale, multi-scale decoder, alpha blending.

    Args:
        widths: channels per scale, finest first; ``len(widths)`` scales (the paper gives no sizes).
        enc_blocks: residual blocks per scale in each encoder stream.
        dec_blocks: residual blocks per scale in the decoder (the coarsest scale has no decoder stage).
        attn_kernel: depthwise context window of the modality attention.
        residual_scale: bound of the detail residual added to the alpha blend (0: pure blend).
        share_encoder: one set of encoder weights for both modalities (default: separate streams).
        slope: LeakyReLU negative slope.
        separable: depthwise-separable residual blocks (the CPU variant's choice).
        blend_space: "feature" (alpha blend of the weighted features before the decoder, the
            component map's order) or "pixel" (alpha blend of the source images after it).
        attention: use the modality attention (False: the ablation without it).
        alpha_blend: use the alpha blending (False: the ablation without it).
        image_context: width of the pixel blend's image-context module (0: none; see
            :class:`AlphaBlending`; needs ``blend_space="pixel"``). The means are of the unpadded
            input, so a tiled run (``--tile``) sees each tile's means, not the image's.
        detail_sigma: 0 (off) or the sigma of the pixel blend's base/detail split (see
            :class:`AlphaBlending`; needs ``blend_space="pixel"``); adds the map ``"detail_alpha"``.
        detail_gain: gain on the blended detail layers (see :class:`AlphaBlending`; needs ``detail_sigma``).
        contrast_ratio, contrast_sigma: both maps weighted down where the infrared has less local contrast
            than the visible image (see :class:`AlphaBlending`; needs ``detail_sigma``).

    Inputs are (B, 1, H, W) in [0, 1], any H, W >= 1 (padded internally by reflection to a
    multiple of ``pad_multiple`` and cropped back). ``return_maps=True`` adds
    ``{"attention": a_0, "alpha": alpha}``, both (B, 1, H, W) in [0, 1], 1 meaning infrared
    (each only when its module is on).
    """

    train_channels_last = True  # 1.5x faster training steps on the CPU (128 px crops, batch 8)

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128),
        enc_blocks: Sequence[int] = (1, 2, 2),
        dec_blocks: Sequence[int] = (1, 2),
        attn_kernel: int = 7,
        residual_scale: float = 0.25,
        share_encoder: bool = False,
        slope: float = 0.1,
        separable: bool = False,
        blend_space: str = "feature",
        attention: bool = True,
        alpha_blend: bool = True,
        image_context: int = 0,
        detail_sigma: float = 0.0,
        detail_gain: float = 1.0,
        contrast_ratio: float = 0.0,
        contrast_sigma: float = 0.0,
    ) -> None:
        super().__init__()
        if (detail_sigma or detail_gain != 1.0 or contrast_ratio) and not (blend_space == "pixel" and alpha_blend):
            raise ValueError("detail_sigma, detail_gain and contrast_ratio need blend_space='pixel' and "
                             "alpha_blend=True")
        if blend_space not in ("feature", "pixel"):
            raise ValueError(f"blend_space must be 'feature' or 'pixel', got {blend_space!r}")
        if image_context and not (blend_space == "pixel" and alpha_blend):
            raise ValueError("image_context needs blend_space='pixel' and alpha_blend=True")
        self.blend_space, self.use_attention, self.use_alpha = blend_space, bool(attention), bool(alpha_blend)
        widths, enc_blocks, dec_blocks = tuple(widths), tuple(enc_blocks), tuple(dec_blocks)
        if len(widths) < 1:
            raise ValueError("widths must name at least one scale")
        if len(dec_blocks) != len(widths) - 1:
            raise ValueError(f"dec_blocks needs {len(widths) - 1} entries (one per scale but the coarsest)")
        self.widths = widths
        self.pad_multiple = 2 ** (len(widths) - 1)
        self.enc_ir = EncoderStream(widths, enc_blocks, slope, separable)
        self.enc_vis = self.enc_ir if share_encoder else EncoderStream(widths, enc_blocks, slope, separable)
        if self.use_attention:
            self.attention = nn.ModuleList(ModalityAttention(c, attn_kernel, slope=slope) for c in widths)
        self.merge = nn.ModuleList(nn.Conv2d(widths[s + 1] + widths[s], widths[s], 1) for s in range(len(widths) - 1))
        self.decoder = nn.ModuleList(
            nn.Sequential(*[ResidualBlock(widths[s], slope, separable) for _ in range(dec_blocks[s])])
            for s in range(len(widths) - 1)
        )
        if blend_space == "pixel" and self.use_alpha:
            self.blend = AlphaBlending(widths[0], residual_scale, int(image_context), float(detail_sigma),
                                       float(detail_gain), float(contrast_ratio), float(contrast_sigma))
        else:  # the decoder writes the image (Eq. 6')
            if blend_space == "feature" and self.use_alpha:
                self.feature_blend = nn.ModuleList(FeatureAlphaBlending(c) for c in widths)
            self.head = nn.Conv2d(widths[0], 1, 3, padding=1)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        m = self.pad_multiple
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        while ph > 0 or pw > 0:  # reflect in rounds so that tiny images work too
            sh, sw = min(ph, max(x.shape[-2] - 1, 1)), min(pw, max(x.shape[-1] - 1, 1))
            x = safe_pad(x, (0, sw, 0, sh))
            ph, pw = ph - sh, pw - sw
        return x

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, return_maps: bool = False):
        """Fuse a pair.

        Args:
            ir: infrared, (B, 1, H, W) in [0, 1].
            vis: visible luminance, (B, 1, H, W) in [0, 1].
            return_maps: also return the attention and alpha maps.

        Returns:
            fused (B, 1, H, W) in [0, 1], or ``(fused, {"attention": ..., "alpha": ...})``.
        """
        check_inputs(ir, vis)
        h, w = ir.shape[-2:]
        ir_p, vis_p = self._pad(ir), self._pad(vis)
        feats_ir, feats_vis = self.enc_ir(ir_p), self.enc_vis(vis_p)
        fused_feats, maps = self._combine(feats_ir, feats_vis)
        d = fused_feats[-1]
        for s in range(len(self.widths) - 2, -1, -1):  # Eq. (3), coarse to fine
            d = self.decoder[s](self._merge(s, d, fused_feats[s]))
        if hasattr(self, "blend"):
            means = None  # the image context, when on, sees the unpadded input's means
            if self.blend.context is not None:
                means = (ir.mean((-2, -1), keepdim=True), vis.mean((-2, -1), keepdim=True))
            fused, maps["alpha"], beta = self.blend(d, ir_p, vis_p, means, return_beta=True)  # Eqs. (4)-(5)
            if beta is not None:
                maps["detail_alpha"] = beta
        else:
            fused = torch.sigmoid(self.head(d))  # Eq. (6')
        fused = fused[..., :h, :w]
        if not return_maps:
            return fused
        return fused, {k: v[..., :h, :w] for k, v in maps.items()}

    def _merge(self, s: int, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``merge[s]([up(coarse), skip])`` of Eq. (3), with the coarse part mixed before it is upsampled.

        A 1x1 convolution commutes with bilinear upsampling (whose weights sum to one), so mixing the
        coarse features down to ``widths[s]`` channels at their own scale gives the same result as
        upsampling them first, at a quarter of the pixels and without the full-resolution concatenation.
        """
        conv, c = self.merge[s], coarse.shape[1]
        low = F.conv2d(coarse, conv.weight[:, :c])
        up = F.interpolate(low, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return up + F.conv2d(skip, conv.weight[:, c:], conv.bias)

    def _combine(self, feats_ir, feats_vis) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """The per-scale features the decoder receives, and the full-resolution maps."""
        out, maps = [], {}
        for s, (f_ir, f_vis) in enumerate(zip(feats_ir, feats_vis)):
            if self.use_attention and self.blend_space == "pixel":
                f, a = self.attention[s](f_ir, f_vis)  # Eqs. (1)-(2)
            elif self.use_attention:
                _, a = self.attention[s](f_ir, f_vis)  # Eq. (1)
                f_ir, f_vis = a * f_ir, (1 - a) * f_vis  # Eq. (2')
            else:
                a = None
                f = 0.5 * (f_ir + f_vis) if self.blend_space == "pixel" else None
            if self.blend_space == "feature":
                if self.use_alpha:
                    f, alpha = self.feature_blend[s](f_ir, f_vis)  # Eqs. (4')-(5')
                    if s == 0:
                        maps["alpha"] = alpha
                else:
                    f = f_ir + f_vis
            if a is not None and s == 0:
                maps["attention"] = a
            out.append(f)
        return out, maps


@register_model(name="fusionnet")
def fusionnet(**kwargs) -> FusionNet:
    """FusionNet (Sun et al. 2025), paper-size variant: widths 32/64/128, alpha blend of the features."""
    return FusionNet(**kwargs)


#: Weights trained before the preset's base/detail split (2026-12-07) have no detail head.
_GROWN = {"blend.detail_head.weight": {"detail_sigma": 0.0}}


@register_model(name="fusionnet_cpu", grown=_GROWN)
def fusionnet_cpu(**kwargs) -> FusionNet:
    """FusionNet, CPU variant: widths 8/16/24/32, pixel-space alpha blend of base layers (Gaussian sigma 16) and
    detail layers by two maps, 0.12 M params, about 0.1 s a 640x480 pair on two cores. The shipped weights are
    used with ``detail_gain=1.2``, ``contrast_ratio=1`` and ``contrast_sigma=32`` (their card's
    ``model_kwargs``; docs/models/fusionnet.md)."""
    cfg = {"widths": (8, 16, 24, 32), "enc_blocks": (0, 1, 1, 1), "dec_blocks": (0, 1, 1), "attn_kernel": 5,
           "blend_space": "pixel", "detail_sigma": 16.0}
    cfg.update(kwargs)
    if "detail_sigma" not in kwargs and (cfg["blend_space"] != "pixel" or not cfg.get("alpha_blend", True)):
        cfg["detail_sigma"] = 0.0  # the base/detail split belongs to the pixel blend (ablations drop both)
    return FusionNet(**cfg)


@register_model(name="fusionnet_mid", grown=_GROWN)
def fusionnet_mid(**kwargs) -> FusionNet:
    """FusionNet, mid-size variant: ``fusionnet_cpu`` with two residual blocks (not one) at the 1/4 and
    1/8 scales of both encoder streams and the decoder. Every ``fusionnet_cpu`` tensor keeps its name and
    shape, so it grows from those weights (``ivfuse train --init-from fusionnet_cpu --init-partial``)."""
    return fusionnet_cpu(**{"enc_blocks": (0, 1, 2, 2), "dec_blocks": (0, 1, 2), **kwargs})
