"""A 1-D signal dataset for CPC: noisy sinusoids whose frequency class is the label.

Example i: x_i[n] = a_i * sin(2*pi*f_i*n + phi_i) + 0.3 * eps_n, n = 0..L-1, with class k in 0..9,
f_i = 0.01 + 0.02*k + U(-0.004, 0.004) cycles per sample, a_i ~ U(0.5, 1.5), phi_i ~ U(0, 2*pi).
Signals are cut into frames of 16 samples (DataInfo.extra['frame']). Train: --data-size (default
4000), test: 1000, both generated from --data-seed.
"""

from __future__ import annotations

import math

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.registry import register_dataset

LENGTH, FRAME, CLASSES = 256, 16, 10


def make(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    f = 0.01 + 0.02 * y + 0.008 * (torch.rand(n, generator=g) - 0.5)
    a = 0.5 + torch.rand(n, generator=g)
    phi = 2 * math.pi * torch.rand(n, generator=g)
    t = torch.arange(LENGTH, dtype=torch.float32)
    x = a[:, None] * torch.sin(2 * math.pi * f[:, None] * t + phi[:, None]) + 0.3 * torch.randn(n, LENGTH, generator=g)
    return x, y


@register_dataset("sines", "representation", "noisy 1-D sinusoids (256 samples, 10 frequency classes), generated",
                  fields=("size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    xtr, ytr = make(cfg.size or 4000, cfg.seed)
    xte, yte = make(1000, cfg.seed + 10_000)
    info = DataInfo("signal", (LENGTH,), CLASSES, {"frame": FRAME})
    return Dataset("sines", info, TensorData(x=xtr, y=ytr), TensorData(x=xte, y=yte))
