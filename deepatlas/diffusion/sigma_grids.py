"""Noise-level grids sigma_0 > sigma_1 > ... > sigma_{N-1} > sigma_N = 0 for the samplers.

- karras: sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho (EDM eq. 5).
- ddpm: the DDPM timesteps t = T-1, ..., 0 (all of them) mapped to their sigma_t.
- ddim: N evenly spaced DDPM timesteps t = k * (T // N), k = N-1 .. 0 (the "leading" spacing).
- uniform_t: flow-matching time t evenly from t_max to 0, sigma = t / (1 - t).
- geometric: log-uniform from sigma_max to sigma_min (VE / NCSN).
All grids end with an appended 0: the last step lands on the denoised sample. Grids are float64.
"""

from __future__ import annotations

import torch

from deepatlas.diffusion import vp_schedule


def _close(s: torch.Tensor) -> torch.Tensor:
    return torch.cat([s.double(), torch.zeros(1, dtype=torch.float64)])


def karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _close((hi + ramp * (lo - hi)) ** rho)


def vp_table(beta_schedule: str = "linear", T: int = 1000) -> torch.Tensor:
    return vp_schedule.sigmas(vp_schedule.betas(beta_schedule, T))


def ddpm(table: torch.Tensor) -> torch.Tensor:
    return _close(table.flip(0))


def ddim(n: int, table: torch.Tensor) -> torch.Tensor:
    T = len(table)
    t = torch.arange(n - 1, -1, -1) * (T // n)
    return _close(table[t])


def uniform_t(n: int, t_max: float = 0.999) -> torch.Tensor:
    t = torch.linspace(t_max, 0, n + 1, dtype=torch.float64)[:-1]
    return _close(t / (1 - t))


def geometric(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    return _close(torch.logspace(torch.log10(torch.tensor(sigma_max)), torch.log10(torch.tensor(sigma_min)), n,
                                 dtype=torch.float64))
