"""Activation normalisation (Glow): y = (x - loc) * exp(log_scale) per channel (dim 1).

On the first training batch loc and log_scale are set so that y has zero mean and unit variance per
channel (data-dependent init); until then the layer is the identity. log-det = (pixels) * sum log_scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepatlas.generative.flows.base import Flow


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def _pixels(x: torch.Tensor) -> int:
    return math.prod(x.shape[2:]) if x.dim() > 2 else 1


class ActNorm(Flow):
    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        dims = [0] + list(range(2, x.dim()))
        self.loc.copy_(x.mean(dims))
        self.log_scale.copy_(-torch.log(x.std(dims) + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x):
        if self.training and not self.initialized:
            self._init(x)
        y = (x - _per_channel(self.loc, x)) * _per_channel(torch.exp(self.log_scale), x)
        return y, self.log_scale.sum().expand(len(x)) * _pixels(x)

    def inverse(self, y):
        return y * _per_channel(torch.exp(-self.log_scale), y) + _per_channel(self.loc, y)
