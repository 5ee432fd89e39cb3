"""NADE (Larochelle & Murray 2011): an autoregressive model whose conditionals share one hidden layer.

    h_i = sigmoid(c + W[:, <i] x_<i)               (H,) for each i; built by a running sum over i
    p(x_i = 1 | x_<i) = sigmoid(b_i + V_i . h_i)
The running sum makes all D conditionals cost O(D H) together instead of O(D^2 H); sampling keeps the
same running sum, so one sample also costs O(D H).
"""

from __future__ import annotations

import torch
from torch import nn

from deepatlas import seeded


class NADE(nn.Module):
    def __init__(self, dim: int, hidden: int = 256):
        super().__init__()
        self.W = nn.Parameter(torch.randn(hidden, dim) * 0.01)
        self.c = nn.Parameter(torch.zeros(hidden))
        self.V = nn.Parameter(torch.randn(dim, hidden) * 0.01)
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, D) in {0, 1} -> logits (B, D)."""
        contrib = x[:, :, None] * self.W.T[None]  # (B, D, H): W[:, j] x_j
        a = torch.cumsum(contrib, dim=1) - contrib + self.c  # exclusive running sum: sum over j < i
        h = torch.sigmoid(a)
        return (h * self.V[None]).sum(-1) + self.b

    @torch.no_grad()
    def sample(self, n: int, g: torch.Generator | None = None) -> torch.Tensor:
        x = self.b.new_zeros(n, self.b.numel())
        a = self.c.expand(n, -1).clone()  # (n, H): c + W[:, <i] x_<i
        for i in range(x.shape[1]):
            p = torch.sigmoid(self.b[i] + torch.sigmoid(a) @ self.V[i])
            x[:, i] = seeded.bernoulli(p, g)
            a += x[:, i:i + 1] * self.W[:, i]
        return x
