"""The denoiser D(x_hat; sigma, y) = c_skip x_hat + c_out F(c_in x_hat; c_noise, y), its training loss,
and classifier-free guidance. See preconditioning.py for the coefficients of each formulation."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deepatlas.diffusion.preconditioning import Precond


def _expand(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sigma as (B, 1, ..., 1) to broadcast against x."""
    return sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


class Denoiser(nn.Module):
    def __init__(self, net: nn.Module, precond: Precond):
        super().__init__()
        self.net = net
        self.precond = precond

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1).expand(len(x))
        p, s = self.precond, _expand(sigma, x)
        return p.c_skip(s) * x + p.c_out(s) * self.net(p.c_in(s) * x, p.c_noise(sigma), y)

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Per-example lambda(sigma) |D(x0 + sigma eps; sigma) - x0|^2, computed on F (shape (B,))."""
        p = self.precond
        sigma = p.sample_sigma(len(x0)).to(x0.device, x0.dtype)  # drawn on the CPU, where the VP table lives
        s = _expand(sigma, x0)
        x = x0 + s * torch.randn_like(x0)
        target = (x0 - p.c_skip(s) * x) / p.c_out(s)
        F = self.net(p.c_in(s) * x, p.c_noise(sigma), y)
        weight = p.loss_weight(s) * p.c_out(s) ** 2
        return (weight * (F - target) ** 2).flatten(1).mean(1)


def guided(denoiser: Callable, y: torch.Tensor, null: int, w: float) -> Callable:
    """Classifier-free guidance: D_w = D(x; sigma, null) + w (D(x; sigma, y) - D(x; sigma, null)).
    w = 1 is the conditional model, w = 0 the unconditional one, w > 1 sharpens towards the class."""
    if w == 1.0:
        return lambda x, sigma: denoiser(x, sigma, y)

    def D(x, sigma):
        both = denoiser(torch.cat([x, x]), sigma, torch.cat([y, torch.full_like(y, null)]))
        cond, uncond = both.chunk(2)
        return uncond + w * (cond - uncond)

    return D
