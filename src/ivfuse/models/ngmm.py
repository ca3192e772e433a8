"""PoMAI's Neighbor-Group Matching Model (Section 3.3, eq. 2-3) and its hash-based feature neighbouring.

Positions are hashed with angular LSH, sorted by bucket, cut into groups that attend to each
other, and put back in raster order: :func:`lsh_buckets`, :func:`sort_by_bucket`,
:func:`gather_sorted`, :func:`with_neighbours`, :func:`unsort`, and the module :class:`NGMM` that
:class:`ivfuse.models.pomai.PoMAI` applies to the infrared branch. The helpers are deterministic
given their inputs (ties keep raster order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NGMM", "gather_sorted", "lsh_buckets", "sort_by_bucket", "unsort", "with_neighbours"]


def lsh_buckets(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Angular (cross-polytope) LSH bucket of every vector.

    Each vector is projected onto the unit sphere, rotated by a random Gaussian matrix and assigned the index of
    the largest coordinate of ``[xR, -xR]`` (Andoni et al. 2015). Identical (or positively scaled) vectors get
    the same bucket; close directions get the same bucket with high probability.

    Args:
        x: (B, L, C) features.
        rotations: (C, n_hashes, n_buckets // 2) random rotations, one per hash round.

    Returns:
        (B, n_hashes, L) int64 bucket indices in ``[0, n_buckets)``.
    """
    if x.dim() != 3 or rotations.dim() != 3 or rotations.shape[0] != x.shape[-1]:
        raise ValueError(f"lsh_buckets: got x {tuple(x.shape)} and rotations {tuple(rotations.shape)}")
    rotated = torch.einsum("blc,chr->bhlr", F.normalize(x, dim=-1), rotations.to(x.dtype))
    return torch.cat((rotated, -rotated), dim=-1).argmax(dim=-1)


def sort_by_bucket(buckets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Permutation that sorts positions by bucket, ties kept in raster order, and its inverse.

    Args:
        buckets: (..., L) int64 bucket indices.

    Returns:
        ``(order, inverse)``, both (..., L): ``x.gather(-1, order)`` sorts and ``sorted.gather(-1, inverse)``
        restores the original order.
    """
    length = buckets.shape[-1]
    positions = torch.arange(length, device=buckets.device)
    order = (buckets * length + positions).argsort(dim=-1)  # keys are unique, so the sort is deterministic
    inverse = torch.empty_like(order).scatter_(-1, order, positions.expand_as(order))
    return order, inverse


def unsort(x: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Undo :func:`sort_by_bucket` on (..., L, C) features with the (..., L) inverse permutation."""
    return x.gather(-2, inverse.unsqueeze(-1).expand_as(x))


def gather_sorted(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """(B, L, C) features and (B, H, L) orders -> (B, H, L, C) sorted features."""
    b, length, c = x.shape
    idx = order.unsqueeze(-1).expand(-1, -1, -1, c)
    return x.unsqueeze(1).expand(b, order.shape[1], length, c).gather(2, idx)


def with_neighbours(t: torch.Tensor) -> torch.Tensor:
    """(..., M, K, C) -> (..., M, 3K, C): each group followed by the previous and the next group (cyclic)."""
    return torch.cat((t, t.roll(1, dims=-3), t.roll(-1, dims=-3)), dim=-2)


# ----------------------------------------------------------------------------------------------------------------
# The module (Section 3.3, eq. 2-3)
# ----------------------------------------------------------------------------------------------------------------
class NGMM(nn.Module):
    """Neighbor-Group Matching Model for the infrared branch (Section 3.3).

    Two 1x1 convolutions give the left and right branches (eq. 2). The right branch is hashed (angular LSH,
    random rotations onto the sphere); positions are sorted by bucket with the indices shared by both branches,
    and cut into M = ceil(L / K) groups of K (eq. 3; the tail is padded and masked when K does not divide L).
    Group attention: queries are the right-branch features, keys the L2-normalised right-branch features,
    values the left-branch features; the result is unsorted, reshaped and added to the input.

    Where the paper is silent (choices, all constructor arguments):
        - the two branches have the same shape but separate weights (``shared_branches=False``);
        - queries/keys from the hashed (right) branch, values from the left one;
        - ``attend_neighbours``: each group also attends to the previous and next group of the sorted sequence
          (as in Reformer / non-local sparse attention), which softens bucket boundaries;
        - ``n_hashes`` rounds are merged with softmax weights from each round's log-sum-exp;
        - the number of buckets is ``clamp(L // K, 2, max_buckets)`` rounded up to even;
        - in training the rotations are redrawn at every call (as in Reformer); in eval mode they come from a
          generator seeded with ``seed``, so inference is deterministic.

    Args:
        dim: channels C.
        group_size: K, the number of positions per group.
        n_hashes: hash rounds.
        max_buckets: upper bound on the number of buckets.
        attend_neighbours: also attend to the adjacent groups.
        shared_branches: use one 1x1 conv for both branches.
        seed: seed of the rotations used in eval mode.

    Shape:
        (B, C, H, W) -> (B, C, H, W), any H, W.
    """

    def __init__(
        self,
        dim: int,
        group_size: int = 64,
        n_hashes: int = 1,
        max_buckets: int = 128,
        attend_neighbours: bool = True,
        shared_branches: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if group_size < 1 or n_hashes < 1 or max_buckets < 2:
            raise ValueError(f"NGMM: group_size, n_hashes >= 1 and max_buckets >= 2 (got {group_size}, "
                             f"{n_hashes}, {max_buckets})")
        self.group_size = group_size
        self.n_hashes = n_hashes
        self.max_buckets = max_buckets
        self.attend_neighbours = attend_neighbours
        self.seed = seed
        self.right = nn.Conv2d(dim, dim, 1)  # eq. 2, right branch (hashed)
        self.left = self.right if shared_branches else nn.Conv2d(dim, dim, 1)  # eq. 2, left branch

    def n_buckets(self, length: int) -> int:
        n = min(max(length // self.group_size, 2), self.max_buckets)
        return n + n % 2

    def rotations(self, dim: int, length: int, device: torch.device) -> torch.Tensor:
        """(C, n_hashes, n_buckets/2) Gaussian rotations: fresh in training, seeded in eval mode."""
        shape = (dim, self.n_hashes, self.n_buckets(length) // 2)
        if self.training:
            return torch.randn(shape, device=device)
        gen = torch.Generator().manual_seed(self.seed)
        return torch.randn(shape, generator=gen).to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        length, k = h * w, self.group_size
        f_right = self.right(x).flatten(2).transpose(1, 2)  # (B, L, C), eq. 2
        f_left = self.left(x).flatten(2).transpose(1, 2)
        # HFN: bucket indices S from the right branch, shared with the left one (eq. 3).
        buckets = lsh_buckets(f_right.detach(), self.rotations(c, length, x.device))  # (B, nh, L)
        order, inverse = sort_by_bucket(buckets)
        g_right = gather_sorted(f_right, order)  # (B, nh, L, C)
        g_left = gather_sorted(f_left, order)
        # Pad the sorted sequence to M * K and mask the padding.
        pad = (-length) % k
        valid = torch.ones(length + pad, dtype=torch.bool, device=x.device)
        if pad:
            valid[length:] = False
            g_right = F.pad(g_right, (0, 0, 0, pad))
            g_left = F.pad(g_left, (0, 0, 0, pad))
        m = (length + pad) // k
        q = g_right.reshape(b, self.n_hashes, m, k, c)
        key = F.normalize(q, dim=-1)
        val = g_left.reshape(b, self.n_hashes, m, k, c)
        mask = valid.view(m, k)
        if self.attend_neighbours and m >= 3:
            key, val = with_neighbours(key), with_neighbours(val)
            mask = with_neighbours(mask.unsqueeze(-1)).squeeze(-1)
        # GAM: attention inside each group (and its neighbours).
        logits = (q @ key.transpose(-2, -1)).masked_fill(~mask.unsqueeze(-2), float("-inf"))  # (B, nh, M, K, K')
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)
        out = torch.exp(logits - lse) @ val  # (B, nh, M, K, C)
        out = out.reshape(b, self.n_hashes, m * k, c)[:, :, :length]
        lse = lse.reshape(b, self.n_hashes, m * k, 1)[:, :, :length]
        out, lse = unsort(out, inverse), unsort(lse, inverse)
        if self.n_hashes > 1:  # merge the rounds, each weighted by its share of the attention mass
            out = (out * torch.softmax(lse, dim=1)).sum(dim=1)
        else:
            out = out[:, 0]
        # (B, L, C) viewed as (B, C, H, W) in channels-last layout, no copy; residual onto x_enc
        return x + out.view(b, h, w, c).permute(0, 3, 1, 2)
