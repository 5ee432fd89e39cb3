"""A residual MLP conditioned on a noise level (and optional label), for vector data such as toy2d."""

from __future__ import annotations

import torch
from torch import nn

from deepatlas.nn.time_embedding import TimeEmbedding


class NoiseMLP(nn.Module):
    def __init__(self, dim: int, hidden: int = 256, depth: int = 4, emb_dim: int = 64, num_classes: int = 0):
        super().__init__()
        self.embed = TimeEmbedding(emb_dim, num_classes)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"norm": nn.LayerNorm(hidden), "emb": nn.Linear(self.embed.out_dim, hidden),
                           "fc1": nn.Linear(hidden, hidden), "fc2": nn.Linear(hidden, hidden)})
            for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(c_noise, y)
        h = self.inp(x)
        for b in self.blocks:
            u = torch.nn.functional.silu(b["norm"](h) + b["emb"](emb))
            h = h + b["fc2"](torch.nn.functional.silu(b["fc1"](u)))
        return self.out(h)
