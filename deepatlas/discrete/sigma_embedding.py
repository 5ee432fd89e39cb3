"""SEDD's embedding of the total noise σ̄(t): sinusoids of log-spaced frequencies f_i (1 .. 1000), then an MLP,

    emb(σ̄) = MLP([sin(σ̄ f_1), .., sin(σ̄ f_n), cos(σ̄ f_1), .., cos(σ̄ f_n)]).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class NoiseEmbedding(nn.Module):
    """sigma_bar (B,) -> (B, d): sinusoids of log-spaced frequencies, then an MLP."""

    def __init__(self, d: int, n_freq: int = 16):
        super().__init__()
        self.register_buffer("freq", torch.exp(torch.linspace(0, math.log(1000), n_freq)))
        self.mlp = nn.Sequential(nn.Linear(2 * n_freq, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, sigma_bar):
        a = sigma_bar.float()[:, None] * self.freq
        return self.mlp(torch.cat([a.sin(), a.cos()], -1))
