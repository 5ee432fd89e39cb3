"""A small convolutional encoder for grey images of 8x8 (digits) up to 28x28 (Fashion-MNIST).

Three 3x3 conv blocks (GroupNorm, SiLU); the second and third halve the resolution when the input is
large enough; an adaptive average pool and a linear layer give one feature vector per image. Because of
the pool the same network also encodes the small patches that CPC cuts out of an image.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(8, c_out), nn.SiLU())


class ConvEncoder(nn.Module):
    """(B, C, H, W) -> (B, dim). `size` is the expected side: strides are chosen so that 28x28 goes
    28 -> 14 -> 7 and 8x8 stays 8 -> 8 -> 4 (an 8x8 image has little to pool away)."""

    def __init__(self, in_channels: int = 1, size: int = 28, width: int = 32, dim: int = 128):
        super().__init__()
        s2, s3 = (2, 2) if size >= 16 else (1, 2)
        self.dim = dim
        self.features = nn.Sequential(
            _block(in_channels, width, 1),
            _block(width, 2 * width, s2),
            _block(2 * width, 4 * width, s3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.out = nn.Linear(4 * width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


def projection_head(dim_in: int, dim_out: int, hidden: int = 0) -> nn.Module:
    """The MLP put between features and a contrastive loss (SimCLR's g): Linear-ReLU-Linear.
    dim_out = 0 means no head (the loss sees the features themselves)."""
    if dim_out == 0:
        return nn.Identity()
    hidden = hidden or dim_in
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), nn.Linear(hidden, dim_out))
