"""MADE (Germain et al. 2015): an MLP whose weight masks make output i depend only on inputs that come
before i in a chosen order, so one pass gives every conditional p(x_i | x_<i).

Degrees: input/output unit of dimension i gets m(i) = its position in the order (1..D); each hidden unit
k gets m(k) drawn from [min degree of the previous layer, D - 1]. A hidden weight is kept when
m(out) >= m(in); an output weight when m(out) > m(in) (strict), so output i sees only x_<i.
Order- and connectivity-agnostic training: `num_masks` > 1 keeps that many (order, degrees) draws, a
training step uses one at random, and evaluation averages the probabilities over all of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    def __init__(self, d_in: int, d_out: int):
        super().__init__(d_in, d_out)
        self.register_buffer("mask", torch.ones(d_out, d_in), persistent=False)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


def degrees(dim: int, hidden: list[int], order: torch.Tensor, g: torch.Generator) -> list[torch.Tensor]:
    """Degree of every unit, input layer first; order[j] is the position (0-based) of input j."""
    ms = [order + 1]
    for h in hidden:
        low = int(ms[-1].min())
        ms.append(torch.randint(low, max(dim, low + 1), (h,), generator=g) if dim > 1 else torch.ones(h, dtype=torch.long))
    return ms


class MADE(nn.Module):
    """x (B, D) -> (B, P, D): P outputs per dimension (1 for Bernoulli logits, 2 for MAF's mu, alpha)."""

    def __init__(self, dim: int, hidden: list[int], params_per_dim: int = 1, num_masks: int = 1,
                 order_agnostic: bool = False, seed: int = 0, zero_out: bool = False):
        super().__init__()
        self.dim, self.hidden, self.p = dim, list(hidden), params_per_dim
        self.num_masks, self.order_agnostic, self.seed = num_masks, order_agnostic, seed
        sizes = [dim] + self.hidden
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = MaskedLinear(sizes[-1], dim * params_per_dim)
        if zero_out:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.register_buffer("order", torch.arange(dim), persistent=False)
        self.set_mask(0)

    def set_mask(self, index: int, order: torch.Tensor | None = None) -> None:
        """Mask set `index` (deterministic from the seed); 0 is the natural order unless `order` is given."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + index)
        if order is None:
            order = torch.randperm(self.dim, generator=g) if (self.order_agnostic and index > 0) else torch.arange(self.dim)
        self.order.copy_(order)
        ms = degrees(self.dim, self.hidden, order, g)
        for layer, m_in, m_out in zip(self.layers, ms[:-1], ms[1:]):
            layer.mask.copy_((m_out[:, None] >= m_in[None, :]).float())
        m_out = (order + 1).repeat(self.p)  # output unit p*D + i belongs to dimension i
        self.out.mask.copy_((m_out[:, None] > ms[-1][None, :]).float())

    def forward(self, x):
        h = x
        for layer in self.layers:
            h = F.relu(layer(h))
        return self.out(h).view(len(x), self.p, self.dim)
