"""Uniform dequantisation and bits/dim for flows on images with L grey levels.

Pixel level k in {0..L-1} becomes y = (k + u) / L, u ~ U(0, 1), a point in its cell of [0, 1]; the flow
models v = y - 1/2. Because the cell has volume L^-D,
    log P(k) = log E_u p(y) - D log L >= E_u log p(y) - D log L   (Jensen),
so  -log p(v) + D log L  is an upper bound on the discrete NLL in nats, and bits/dim divides it by D ln 2.
"""

from __future__ import annotations

import math

import torch


def levels_of(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Images in [-1, 1] with `levels` grey levels -> integer levels k (float tensor)."""
    return torch.round((x + 1) / 2 * (levels - 1))


def dequantize(x: torch.Tensor, levels: int) -> torch.Tensor:
    return (levels_of(x, levels) + torch.rand_like(x)) / levels - 0.5


def to_image(v: torch.Tensor, levels: int) -> torch.Tensor:
    """Inverse of dequantize up to the noise: v -> the cell's level, as an image in [-1, 1]."""
    k = torch.floor((v + 0.5) * levels).clamp(0, levels - 1)
    return k / (levels - 1) * 2 - 1


def nll_nats(log_prob_v: torch.Tensor, dims: int, levels: int) -> torch.Tensor:
    return -log_prob_v + dims * math.log(levels)


def bits_per_dim(log_prob_v: torch.Tensor, dims: int, levels: int) -> torch.Tensor:
    return nll_nats(log_prob_v, dims, levels) / (dims * math.log(2))
