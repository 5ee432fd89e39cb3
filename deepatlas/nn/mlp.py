"""A plain MLP (no conditioning), for the vector-data networks of GANs, VAEs and flows."""

from __future__ import annotations

from torch import nn


def mlp(d_in: int, d_out: int, hidden: int = 256, depth: int = 2, act: type = nn.ReLU,
        zero_out: bool = False) -> nn.Sequential:
    """A plain MLP: `depth` hidden layers of width `hidden`."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), act()]
        d = hidden
    layers.append(nn.Linear(d, d_out))
    if zero_out:
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)
