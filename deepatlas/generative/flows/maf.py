"""Masked autoregressive flow (Papamakarios et al. 2017): each layer is a MADE that gives, for every
dimension, a shift mu_i and log-scale alpha_i computed from the dimensions before it:

    z_i = (x_i - mu_i(x_<i)) * exp(-alpha_i(x_<i))       log |det dz/dx| = -sum_i alpha_i
    x_i = z_i * exp(alpha_i) + mu_i                        (inverse: one MADE pass per dimension, in order)
Layers alternate between the natural and the reversed order. The MADE's last layer starts at zero, so a
fresh MAF is the identity. alpha is bounded by a soft clamp (tanh * 3) for stability.
"""

from __future__ import annotations

import torch

from deepatlas.generative.autoregressive.made import MADE
from deepatlas.generative.flows.base import Flow, Sequence


class MAFLayer(Flow):
    def __init__(self, dim: int, hidden: list[int], reverse: bool, seed: int = 0):
        super().__init__()
        self.made = MADE(dim, hidden, params_per_dim=2, seed=seed, zero_out=True)
        if reverse:
            self.made.set_mask(0, order=torch.arange(dim - 1, -1, -1))

    def _mu_alpha(self, x):
        out = self.made(x)  # (B, 2, D)
        return out[:, 0], 3 * torch.tanh(out[:, 1] / 3)

    def forward(self, x):
        mu, alpha = self._mu_alpha(x)
        return (x - mu) * torch.exp(-alpha), -alpha.sum(1)

    @torch.no_grad()
    def inverse(self, z):
        x = torch.zeros_like(z)
        for i in torch.argsort(self.made.order).tolist():  # dimensions in their autoregressive order
            mu, alpha = self._mu_alpha(x)
            x[:, i] = z[:, i] * torch.exp(alpha[:, i]) + mu[:, i]
        return x


def maf(dim: int, layers: int = 5, hidden: int = 128, depth: int = 2) -> Flow:
    return Sequence([MAFLayer(dim, [hidden] * depth, reverse=k % 2 == 1, seed=k) for k in range(layers)])
