"""Feature Pyramid Network neck (Lin et al., 2017): a top-down path with lateral connections.

Backbone maps C_2 .. C_L (strides 2^2 .. 2^L, finest first) become P_2 .. P_L with the same strides
and `out_channels` each:

    M_L = lateral_L(C_L)
    M_l = lateral_l(C_l) + upsample_x2(M_{l+1})         (nearest neighbour, the paper's choice)
    P_l = smooth_l(M_l)                                 (3x3 conv against upsampling aliasing)

so that every level, even the finest, carries the semantics of the deepest map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FPN(nn.Module):
    def __init__(self, in_channels: list[int], out_channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """feats: finest first, each half the size of the one before -> P maps, finest first."""
        m = self.lateral[-1](feats[-1])
        outs = [self.smooth[-1](m)]
        for lat, smooth, c in zip(reversed(self.lateral[:-1]), reversed(self.smooth[:-1]), reversed(feats[:-1])):
            m = lat(c) + F.interpolate(m, size=c.shape[-2:], mode="nearest")
            outs.append(smooth(m))
        return outs[::-1]
