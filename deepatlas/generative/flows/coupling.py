"""Affine coupling with a binary mask (RealNVP, Dinh et al. 2017).

With mask m (1 = passed through and conditioned on), and (s, t) = net(m * x):
    y = m * x + (1 - m) * (x * exp(s) + t)       log |det dy/dx| = sum (1 - m) * s
    x = m * y + (1 - m) * (y - t) * exp(-s)       (m * y = m * x, so the same s, t are recomputed)
s = scale * tanh(raw) keeps the scales bounded early in training; the net's last layer is zero so a
fresh coupling is the identity. Masks: checkerboard and channel halves for images, alternating halves
for vectors. Glow's coupling is the channel-mask case.
"""

from __future__ import annotations

import torch
from torch import nn

from deepatlas.generative.flows.base import Flow


def checkerboard_mask(c: int, h: int, w: int, parity: int = 0) -> torch.Tensor:
    ij = torch.arange(h)[:, None] + torch.arange(w)[None, :]
    return ((ij + parity) % 2 == 0).float().expand(c, h, w).clone()


def channel_mask(c: int, h: int, w: int, parity: int = 0) -> torch.Tensor:
    m = torch.zeros(c, h, w)
    half = c // 2
    if parity == 0:
        m[:half] = 1
    else:
        m[half:] = 1
    return m


def vector_mask(d: int, parity: int = 0) -> torch.Tensor:
    m = (torch.arange(d) % 2 == parity).float()
    return m


class AffineCoupling(Flow):
    def __init__(self, mask: torch.Tensor, net: nn.Module):
        """net maps a tensor shaped like x to one with twice the channels (dim 1): raw s and t."""
        super().__init__()
        self.register_buffer("mask", mask, persistent=False)
        self.net = net
        self.scale = nn.Parameter(torch.ones(mask.shape[0]))

    def _s_t(self, xm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_s, t = self.net(xm).chunk(2, dim=1)
        scale = self.scale.view(1, -1, *([1] * (xm.dim() - 2)))
        inv = 1 - self.mask
        return scale * torch.tanh(raw_s) * inv, t * inv

    def forward(self, x):
        s, t = self._s_t(x * self.mask)
        y = self.mask * x + (1 - self.mask) * (x * torch.exp(s) + t)
        return y, s.flatten(1).sum(1)

    def inverse(self, y):
        s, t = self._s_t(y * self.mask)
        return self.mask * y + (1 - self.mask) * (y - t) * torch.exp(-s)

