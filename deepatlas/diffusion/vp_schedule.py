"""Discrete DDPM schedules seen as noise levels.

DDPM corrupts x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps with alpha_bar_t = prod_{s<=t} (1 - beta_s),
t = 0 .. T-1. Dividing by sqrt(alpha_bar_t) gives the EDM form x_t / s_t = x0 + sigma_t eps with
    s_t = sqrt(alpha_bar_t),   sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t).
Linear beta: evenly spaced from beta_start to beta_end (Ho et al.); cosine: alpha_bar from
f(t) = cos^2(((t/T + s) / (1 + s)) pi/2), betas clipped at 0.999 (Nichol & Dhariwal).
"""

from __future__ import annotations

import math

import torch


def betas(kind: str, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    if kind == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        t = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {kind!r}")


def alpha_bar(b: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - b, 0)


def sigmas(b: torch.Tensor) -> torch.Tensor:
    """sigma_t for t = 0 .. T-1 (increasing)."""
    ab = alpha_bar(b)
    return ((1 - ab) / ab).sqrt()


def posterior_variance(b: torch.Tensor) -> torch.Tensor:
    """beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t, the variance of q(x_{t-1} | x_t, x0)."""
    ab = alpha_bar(b)
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    return (1 - ab_prev) / (1 - ab) * b


def sigma_to_t(sigma: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Continuous timestep for any sigma: linear interpolation of t in log sigma over the table."""
    table = table.to(sigma.device)  # the table is built on the CPU; sigma is where the model runs
    log_table = table.log().to(torch.float64)
    ls = sigma.to(torch.float64).clamp(table[0], table[-1]).log()
    idx = torch.searchsorted(log_table, ls).clamp(1, len(table) - 1)
    lo, hi = log_table[idx - 1], log_table[idx]
    w = (ls - lo) / (hi - lo)
    return (idx - 1 + w).to(sigma.dtype)
