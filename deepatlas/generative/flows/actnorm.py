"""Activation normalisation (Glow): y = (x - loc) * exp(log_scale) per channel (dim 1).

On the first training batch loc and log_scale are set so that y has zero mean and unit variance per
channel (data-dependent init); until then the layer is the identity. log-det = (pixels) * sum log_scale.
Under torchrun the statistics are those of the global batch (sums all-reduced over ranks), so every
replica starts from the same values, the ones one process with the whole batch would pick.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
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
        if dist.is_initialized() and dist.get_world_size() > 1:
            # count, sum and sum of squares per channel over every rank's slice of the batch
            n = torch.full_like(self.loc, x.numel() / x.shape[1], dtype=torch.float64)
            stats = torch.stack([n, x.double().sum(dims), x.double().square().sum(dims)])
            dist.all_reduce(stats)
            n, s1, s2 = stats
            mean, std = s1 / n, ((s2 - s1 * s1 / n) / (n - 1)).clamp_min(0).sqrt()  # unbiased, as x.std
        else:
            mean, std = x.mean(dims), x.std(dims)
        self.loc.copy_(mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x):
        if self.training and not self.initialized:
            self._init(x)
        y = (x - _per_channel(self.loc, x)) * _per_channel(torch.exp(self.log_scale), x)
        return y, self.log_scale.sum().expand(len(x)) * _pixels(x)

    def inverse(self, y):
        return y * _per_channel(torch.exp(-self.log_scale), y) + _per_channel(self.loc, y)
