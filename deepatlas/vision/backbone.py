"""A small residual conv backbone shared by every detector, and its TridentNet form.

Stages at strides 2 (stem), 4, 8, 16 give C2, C3, C4 with channels 2w, 3w, 4w. Each stage is a
stride-2 3x3 conv followed by a residual pair of 3x3 convs. The last stage's pair takes a dilation
at call time: with `dilations=(1, 2, 3)` it runs three times with the SAME weights — the trident
branches of Li et al. (2019), whose receptive fields differ while their parameters are shared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class ConvNorm(nn.Module):
    """3x3 conv + GroupNorm + ReLU; the dilation (and matching padding) is chosen per call."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.norm = _norm(cout)

    def forward(self, x: torch.Tensor, dilation: int = 1) -> torch.Tensor:
        y = F.conv2d(x, self.conv.weight, None, self.conv.stride, padding=dilation, dilation=dilation)
        return F.relu(self.norm(y))


class Stage(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.down = ConvNorm(cin, cout, stride=2)
        self.a = ConvNorm(cout, cout)
        self.b = ConvNorm(cout, cout)

    def forward(self, x: torch.Tensor, dilation: int = 1) -> torch.Tensor:
        y = self.down(x)
        return y + self.b(self.a(y, dilation), dilation)


class Backbone(nn.Module):
    strides = (4, 8, 16)

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.channels = (2 * width, 3 * width, 4 * width)
        self.stem = ConvNorm(in_channels, width, stride=2)
        self.s2 = Stage(width, self.channels[0])
        self.s3 = Stage(self.channels[0], self.channels[1])
        self.s4 = Stage(self.channels[1], self.channels[2])

    def forward(self, x: torch.Tensor, dilations: tuple[int, ...] = (1,)):
        """-> (C2, C3, [C4 for each dilation of the last stage])."""
        c2 = self.s2(self.stem(x))
        c3 = self.s3(c2)
        return c2, c3, [self.s4(c3, d) for d in dilations]
