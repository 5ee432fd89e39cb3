"""The multi-scale architecture for images (RealNVP section 3.6, Glow figure 2).

Each level squeezes (C, H, W) -> (4C, H/2, W/2) (every 2x2 block of pixels becomes 4 channels: a
permutation, log-det 0), runs its flow steps, and, except at the last level, factors out half of the
channels straight to the latent z. So later levels work on fewer, coarser dimensions. The result is one
bijection from the image to a flat z with the same number of dimensions, with base density N(0, I).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepatlas.errors import UserError
from deepatlas.generative.flows.base import Flow, Sequence


def squeeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, 2 * h, 2 * w)


def level_shapes(shape: tuple[int, int, int], levels: int) -> list[tuple[int, int, int]]:
    """Shapes seen by each level's steps (after its squeeze)."""
    c, h, w = shape
    out = []
    for lvl in range(levels):
        if h % 2 or w % 2:
            raise UserError(f"cannot squeeze a {h}x{w} map at level {lvl + 1} of {levels}: image sides must be divisible by "
                            f"2^levels = {2 ** levels}; use fewer --model-levels (your own pictures: e.g. --data-resolution 16 or 32)")
        c, h, w = 4 * c, h // 2, w // 2
        out.append((c, h, w))
        if lvl < levels - 1:
            c = c // 2
    return out


class MultiScale(Flow):
    def __init__(self, shape: tuple[int, int, int], levels: int,
                 make_steps: Callable[[tuple[int, int, int]], list[Flow]]):
        super().__init__()
        self.shape = tuple(shape)
        self.shapes = level_shapes(self.shape, levels)
        self.levels = nn.ModuleList(Sequence(make_steps(s)) for s in self.shapes)

    def forward(self, x):
        zs, logdet = [], x.new_zeros(len(x))
        for i, steps in enumerate(self.levels):
            x, ld = steps(squeeze(x))
            logdet = logdet + ld
            if i < len(self.levels) - 1:
                half = x.shape[1] // 2
                zs.append(x[:, half:].flatten(1))  # factored out
                x = x[:, :half]
        zs.append(x.flatten(1))
        return torch.cat(zs, 1), logdet  # (B, C*H*W)

    def inverse(self, z):
        sizes = []
        for i, (c, h, w) in enumerate(self.shapes):
            last = i == len(self.shapes) - 1
            sizes.append(c * h * w if last else (c - c // 2) * h * w)
        parts = list(z.split(sizes, dim=1))
        x = None
        for i in reversed(range(len(self.levels))):
            c, h, w = self.shapes[i]
            if i == len(self.levels) - 1:
                x = parts[i].view(len(z), c, h, w)
            else:
                x = torch.cat([x, parts[i].view(len(z), c - c // 2, h, w)], 1)
            x = unsqueeze(self.levels[i].inverse(x))
        return x
