"""The convolutional network inside the image coupling layers of RealNVP and Glow: it maps the kept half
of the channels to the scale and shift of the other half, and starts at zero so that a new flow step is
the identity (Glow's zero initialisation)."""

from __future__ import annotations

import torch
from torch import nn


class ConvNet(nn.Module):
    """3x3 conv -> 1x1 conv -> 3x3 conv with ReLUs; the last layer starts at zero so that a flow step
    built on it starts as the identity (Glow's zero initialisation)."""

    def __init__(self, c_in: int, c_out: int, hidden: int = 64, zero_out: bool = True):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                                 nn.Conv2d(hidden, c_out, 3, padding=1))
        if zero_out:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

