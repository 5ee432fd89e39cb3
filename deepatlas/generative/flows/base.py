"""The centre of the flow family: a bijection f that maps data x to z with its log-determinant.

Every flow layer implements `forward(x) -> (z, logdet)` with logdet = log |det df/dx| per example, and
`inverse(z) -> x`. Change of variables: log p(x) = log p_Z(f(x)) + log |det df/dx|, with p_Z = N(0, I).
Composition adds log-determinants (`Sequence`). Sampling runs the layers' inverses backwards.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Flow(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Sequence(Flow):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        logdet = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z):
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over all but the batch dimension."""
    return (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


def log_prob(flow: Flow, x: torch.Tensor) -> torch.Tensor:
    z, logdet = flow(x)
    return standard_normal_log_prob(z) + logdet
