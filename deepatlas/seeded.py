"""Seeded draws that give the same numbers on every device.

A CPU `torch.Generator` draws and the result then moves to the device the model runs on. A CUDA
generator with the same seed would give other numbers, so `deepatlas sample --seed 3` would not
reproduce from one machine to the next. With `generator=None` torch's global CPU stream draws, the same way.
"""

from __future__ import annotations

import torch


def randn(shape, generator: torch.Generator | None, device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """z ~ N(0, I) of `shape`, drawn on the CPU, placed on `device`."""
    z = torch.randn(shape, generator=generator, dtype=dtype)
    return z if z.device == device else z.to(device)  # the check costs less than a no-op .to()


def bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """x ~ Bernoulli(p) elementwise, drawn on the CPU, placed on p's device."""
    return torch.bernoulli(p.cpu(), generator=generator).to(p.device)
