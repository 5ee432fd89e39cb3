"""Samplers: each takes (denoiser, x, sigmas) with x = sigma_0 * noise and integrates down the grid
in the x_hat = x0 + sigma eps variable, where the probability-flow ODE reads dx/dsigma = (x - D(x; sigma)) / sigma.

- euler: x <- x + (sigma' - sigma) d, d = (x - D) / sigma.  (DDIM with eta = 0 is this step.)
- heun: EDM Algorithm 2: optional churn raises sigma to sigma_hat = sigma (1 + gamma) by adding noise,
  an Euler step to sigma', then the trapezoidal correction with the slope at sigma' (skipped when sigma' = 0).
- ancestral(eta): x <- D + sigma_down d + sigma_up z with
  sigma_up = min(sigma', eta sigma' sqrt(1 - sigma'^2 / sigma^2)), sigma_down = sqrt(sigma'^2 - sigma_up^2).
  eta = 0 is DDIM, eta = 1 on the DDPM grid is DDPM's ancestral step with the posterior variance beta_tilde.
- dpmpp_2m: DPM-Solver++(2M) in lambda = -log sigma: x <- (sigma'/sigma) x - expm1(-h) D', h = lambda' - lambda,
  D' = (1 + 1/(2r)) D - 1/(2r) D_prev, r = h_prev / h (first order on the first and last step).
Every sampler has the signature (denoiser, x, sigmas, *, generator=None, callback=None, its own options):
`generator` drives the fresh noise of the stochastic ones (the deterministic ones draw none), and
`callback(i, sigma, x, denoised)` sees every step (for trajectory pictures). `SAMPLERS[name]` is what the
registry holds under `name`: the function, its grid, the options fixed by the name (ddpm: eta = 1), the
SampleConfig options the user may set, and its network evaluations for a number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from deepatlas import seeded
from deepatlas.registry import register_sampler

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def euler(denoiser: Denoise, x, sigmas, *, generator=None, callback=None):
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        D = denoiser(x, s)
        if callback:
            callback(i, s, x, D)
        x = x + (s_next - s) * (x - D) / s
    return x


@torch.no_grad()
def heun(denoiser: Denoise, x, sigmas, *, generator=None, callback=None, churn: float = 0.0, s_tmin: float = 0.0,
         s_tmax: float = math.inf, s_noise: float = 1.0):
    n = len(sigmas) - 1
    for i in range(n):
        s, s_next = sigmas[i], sigmas[i + 1]
        gamma = min(churn / n, math.sqrt(2) - 1) if s_tmin <= s <= s_tmax else 0.0
        s_hat = s * (1 + gamma)
        if gamma > 0:
            x = x + (s_hat ** 2 - s ** 2).sqrt() * s_noise * seeded.randn(x.shape, generator, x.device, x.dtype)
        D = denoiser(x, s_hat)
        if callback:
            callback(i, s_hat, x, D)
        d = (x - D) / s_hat
        x_next = x + (s_next - s_hat) * d
        if s_next > 0:
            d_next = (x_next - denoiser(x_next, s_next)) / s_next
            x_next = x + (s_next - s_hat) * (d + d_next) / 2
        x = x_next
    return x


def ancestral_step(s: torch.Tensor, s_next: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma_down, sigma_up): the deterministic part and the fresh noise of one ancestral step."""
    if eta == 0 or s_next == 0:
        return s_next, torch.zeros_like(s_next)
    up = torch.minimum(s_next, eta * (s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2).sqrt())
    return (s_next ** 2 - up ** 2).sqrt(), up


@torch.no_grad()
def ancestral(denoiser: Denoise, x, sigmas, *, generator=None, callback=None, eta: float = 1.0):
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        D = denoiser(x, s)
        if callback:
            callback(i, s, x, D)
        down, up = ancestral_step(s, s_next, eta)
        x = D + down * (x - D) / s
        if up > 0:
            x = x + up * seeded.randn(x.shape, generator, x.device, x.dtype)
    return x


@torch.no_grad()
def dpmpp_2m(denoiser: Denoise, x, sigmas, *, generator=None, callback=None):
    D_prev, h_prev = None, None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        D = denoiser(x, s)
        if callback:
            callback(i, s, x, D)
        if s_next == 0:
            x = D
            break
        h = (s / s_next).log()  # lambda' - lambda with lambda = -log sigma
        D_hat = D
        if D_prev is not None:
            r = h_prev / h
            D_hat = (1 + 1 / (2 * r)) * D - (1 / (2 * r)) * D_prev
        x = (s_next / s) * x - torch.expm1(-h) * D_hat
        D_prev, h_prev = D, h
    return x


class Sampler(NamedTuple):
    fn: Callable
    grid: str  # "ddpm" | "ddim" (strided DDPM timesteps) | "karras"
    fixed: dict  # options the name fixes
    options: tuple[str, ...]  # SampleConfig fields this sampler reads (besides steps)
    nfe: Callable[[int], int]  # network evaluations for a number of steps


# ddpm is the ancestral step (eta = 1) on `steps` strided DDPM timesteps; at its default 1000 steps the
# grid is every timestep of the table, DDPM's own sampler
SAMPLERS = {
    "ddpm": Sampler(ancestral, "ddpm", {"eta": 1.0}, (), lambda n: n),
    "ddim": Sampler(ancestral, "ddim", {"eta": 0.0}, ("eta",), lambda n: n),
    "euler": Sampler(euler, "karras", {}, (), lambda n: n),
    "heun": Sampler(heun, "karras", {}, ("churn",), lambda n: 2 * n - 1),
    "dpmpp-2m": Sampler(dpmpp_2m, "karras", {}, (), lambda n: n),
}

for _name, _help in [
    ("ddpm", "DDPM ancestral sampling (eta = 1) over --steps strided timesteps; default all 1000"),
    ("ddim", "DDIM over evenly spaced DDPM timesteps (--eta: 0 deterministic, 1 ancestral)"),
    ("euler", "Euler on the probability-flow ODE over the Karras sigma grid (uniform t for flow models)"),
    ("heun", "EDM's Heun 2nd-order sampler with optional --churn; NFE = 2 steps - 1"),
    ("dpmpp-2m", "DPM-Solver++(2M), multistep 2nd order in log sigma"),
]:
    register_sampler(_name, "continuous diffusion", _help)(SAMPLERS[_name])
