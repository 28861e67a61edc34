"""CUT's patch sampler ``F`` (Park et al., ECCV 2020): the embeddings PatchNCE compares.

From each encoder layer's features it takes the feature vectors at the given positions, passes
them through that layer's two-layer MLP head and l2-normalises them. The heads are built here from
the layers' channel counts; the authors build the same heads lazily on the first forward pass, with
the same names (``mlp_0``, ``mlp_1``, ...), so their ``latest_net_F.pth`` loads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def l2_normalise(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``x / (||x||_2 + eps)`` along dimension 1: the authors' ``Normalize``, except that a zero row
    gets a zero gradient (theirs, ``pow(0.5)`` of 0, gives NaN, which a narrow head whose ReLUs are
    all off produces at once)."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)


class PatchSampler(nn.Module):
    """Per-layer MLP heads over sampled feature positions.

    ``channels``: the channel count of each encoder layer, in order; ``mlp_channels``: the heads'
    width and output size (256 in the paper); ``use_mlp`` False samples and normalises only (the
    authors' ``sample``).
    """

    def __init__(self, channels: Sequence[int], *, mlp_channels: int = 256, use_mlp: bool = True) -> None:
        super().__init__()
        self.channels, self.use_mlp = list(channels), use_mlp
        if use_mlp:
            for i, c in enumerate(self.channels):
                setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(c, mlp_channels), nn.ReLU(),
                                                        nn.Linear(mlp_channels, mlp_channels)))

    def forward(self, feats: Sequence[torch.Tensor], ids: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``feats``: one ``(N, C_l, H_l, W_l)`` map per layer; ``ids``: per layer, the flat positions
        (``y * W_l + x``, int64 ``(P_l,)``) to take from every image. Returns per layer the
        ``(N * P_l, D)`` unit-length embeddings, image-major."""
        if len(feats) != len(self.channels) or len(ids) != len(feats):
            raise ValueError(f"the sampler has {len(self.channels)} layers; got {len(feats)} feature maps and "
                             f"{len(ids)} id lists")
        out = []
        for i, (feat, idx) in enumerate(zip(feats, ids, strict=True)):
            x = feat.permute(0, 2, 3, 1).flatten(1, 2)[:, idx, :].flatten(0, 1)
            if self.use_mlp:
                x = getattr(self, f"mlp_{i}")(x)
            out.append(l2_normalise(x))
        return out

    def example_inputs(self, batch_size: int = 2) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """A small valid input: one ``(batch_size, C_l, 8, 8)`` map per layer and 16 positions each."""
        return ([torch.randn(batch_size, c, 8, 8) for c in self.channels],
                [torch.arange(16) for _ in self.channels])

    @staticmethod
    def draw_ids(sizes: Sequence[int], num_patches: int, generator: torch.Generator) -> list[torch.Tensor]:
        """For layers of ``sizes`` positions (``H_l * W_l``), ``min(num_patches, size)`` distinct
        positions each, in random order, from ``generator`` (CPU int64 tensors)."""
        return [torch.randperm(n, generator=generator)[:min(num_patches, n)] for n in sizes]
