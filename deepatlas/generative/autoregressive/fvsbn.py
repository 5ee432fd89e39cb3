"""Fully visible sigmoid belief network (Frey 1998; the logistic autoregressive baseline):

    p(x_i = 1 | x_<i) = sigmoid(b_i + sum_{j<i} W_ij x_j)
one logistic regression per dimension, i.e. a strictly lower-triangular weight matrix. D(D+1)/2 parameters.
"""

from __future__ import annotations

import torch
from torch import nn


class FVSBN(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("mask", torch.ones(dim, dim).tril(-1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, D) in {0, 1} -> logits (B, D) of p(x_i = 1 | x_<i)."""
        return x @ (self.weight * self.mask).T + self.bias
