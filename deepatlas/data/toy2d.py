"""Two-dimensional toy distributions: moons, swiss roll, 8 gaussians, checkerboard.

Each is scaled to roughly unit standard deviation so that one preconditioning (sigma_data = 1) fits all.
"""

from __future__ import annotations

import math

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.errors import unknown
from deepatlas.registry import register_dataset


def moons(n: int, g: torch.Generator) -> torch.Tensor:
    k = torch.randint(0, 2, (n,), generator=g)
    a = torch.rand(n, generator=g) * math.pi
    x = torch.stack([torch.cos(a), torch.sin(a)], 1)
    x = torch.where(k[:, None] == 0, x, torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], 1))
    x = x + 0.05 * torch.randn(n, 2, generator=g)
    return (x - torch.tensor([0.5, 0.25])) * 1.5


def swissroll(n: int, g: torch.Generator) -> torch.Tensor:
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    x = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 7
    return x + 0.05 * torch.randn(n, 2, generator=g)


def gaussians8_centers() -> torch.Tensor:
    a = torch.arange(8) * (2 * math.pi / 8)
    return 2 * torch.stack([torch.cos(a), torch.sin(a)], 1)


def gaussians8(n: int, g: torch.Generator, std: float = 0.1) -> torch.Tensor:
    k = torch.randint(0, 8, (n,), generator=g)
    return gaussians8_centers()[k] + std * torch.randn(n, 2, generator=g)


def checkerboard(n: int, g: torch.Generator) -> torch.Tensor:
    x1 = torch.rand(n, generator=g) * 4 - 2
    x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g) * 2.0
    x2 = x2 + (torch.floor(x1) % 2)
    return torch.stack([x1, x2], 1)


SHAPES = {"moons": moons, "swissroll": swissroll, "gaussians8": gaussians8, "checkerboard": checkerboard}


@register_dataset("toy2d", "data", "2-D toys (--variant moons | swissroll | gaussians8 | checkerboard), generated",
                  fields=("variant", "size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    variant = cfg.variant or "moons"
    if variant not in SHAPES:
        raise unknown("toy2d variant", variant, SHAPES)
    n = cfg.size or 20000
    g = torch.Generator().manual_seed(cfg.seed)
    train = SHAPES[variant](n, g)
    test = SHAPES[variant](max(n // 4, 1), g)
    info = DataInfo("vector", (2,), extra={"variant": variant})
    return Dataset(f"toy2d-{variant}", info, TensorData(x=train), TensorData(x=test))
