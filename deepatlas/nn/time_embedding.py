"""Sinusoidal embedding of a scalar noise level c_noise (Transformer positions, as in DDPM):
emb = [cos(c * f_i), sin(c * f_i)], f_i = max_period^(-i / half), followed by a 2-layer MLP."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal(c: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=c.device) / half)
    args = c.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class TimeEmbedding(nn.Module):
    """c_noise (B,) -> (B, dim); with `num_classes`, adds a label embedding (index num_classes = no label)."""

    def __init__(self, dim: int, num_classes: int = 0):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.SiLU(), nn.Linear(dim * 4, dim * 4))
        self.label = nn.Embedding(num_classes + 1, dim * 4) if num_classes else None
        self.out_dim = dim * 4

    def forward(self, c_noise: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.mlp(sinusoidal(c_noise, self.dim))
        if self.label is not None:
            if y is None:
                y = torch.full((len(c_noise),), self.label.num_embeddings - 1, device=c_noise.device)
            emb = emb + self.label(y)
        return emb
