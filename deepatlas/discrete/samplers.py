"""Reverse-time samplers for the processes of `processes.py`, on a grid of times from t_max down to 0.

- `ancestral` (MDLM): absorbing process, network = denoiser p(x0 | x_t). Going from t to s < t, a masked
  token is revealed with probability (alpha_s - alpha_t) / (1 - alpha_t) and then drawn from p(x0^l | x_t);
  revealed tokens never change. At s = 0 every token is revealed.
- `euler` (SEDD's tau-leaping / Euler step): network = log ratios s(x_t). The reverse rate of the jump
  x^l -> y is Q[y, x^l] s_{l,y}; over a stretch of total forward rate d = sigma_bar(t) - sigma_bar(s), token l
  jumps to y with probability d Q[y, x^l] s_{l,y} (the rest stays), clipped to a distribution.
- `tweedie` (SEDD's analytic step): p(x_s^l = y | x_t) proportional to (s_l exp(-d Q))_y * exp(d Q)[y, x_t^l],
  exact for one token; for the absorbing process with exact ratios it is the ancestral step.

Both SEDD samplers finish with a Tweedie step to t = 0 (SEDD's "denoise").
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deepatlas.discrete.processes import Process
from deepatlas.registry import register_sampler

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, L), t (B,)) -> log s (B, L, K)


def time_grid(steps: int, t_max: float = 1.0) -> torch.Tensor:
    return torch.linspace(t_max, 0.0, steps + 1, dtype=torch.float64)


def _draw(p: torch.Tensor) -> torch.Tensor:
    """Sample from unnormalised non-negative weights (B, L, K) with one uniform per token (inverse CDF)."""
    c = p.double().cumsum(-1)
    u = torch.rand(p.shape[:-1], dtype=torch.float64, device=p.device)[..., None] * c[..., -1:]
    return (c <= u).sum(-1).clamp(max=p.shape[-1] - 1)


@torch.no_grad()
def ancestral(logp_fn: Callable[[torch.Tensor], torch.Tensor], mask_id: int, x: torch.Tensor, steps: int,
              t_max: float = 1.0, fixed: torch.Tensor | None = None) -> torch.Tensor:
    """MDLM ancestral sampling from x (masked where to generate); `fixed` positions are never changed."""
    grid = time_grid(steps, t_max)
    for t, s in zip(grid[:-1].tolist(), grid[1:].tolist()):
        reveal_p = ((1 - s) - (1 - t)) / (1 - (1 - t))  # (alpha_s - alpha_t) / (1 - alpha_t)
        masked = x == mask_id
        if fixed is not None:
            masked &= ~fixed
        u = torch.rand(x.shape, device=x.device)
        x0 = _draw(logp_fn(x).softmax(-1))
        x = torch.where(masked & (u < reveal_p), x0, x)
    return x


def _ratios(log_s: torch.Tensor, x: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """s (B, L, K) with s_{x} = 1 at the current state and 0 where no forward jump y -> x exists."""
    valid = Q.T[x] > 0
    s = torch.where(valid, log_s.double().exp(), 0.0)
    return s.scatter(-1, x[..., None], 1.0)


def _tweedie_step(score_fn: ScoreFn, process: Process, x: torch.Tensor, t: float, s: float) -> torch.Tensor:
    tt = torch.full((len(x),), t, device=x.device)
    d = (process.sigma_bar(torch.tensor(t, dtype=torch.float64, device=x.device))
         - process.sigma_bar(torch.tensor(s, dtype=torch.float64, device=x.device)))
    ratios = _ratios(score_fn(x, tt), x, process.generator(x.device).double())
    back = ratios @ process.transition(-d)  # (B, L, K): (s exp(-dQ))_y
    fwd = process.transition(d)[:, x].permute(1, 2, 0)  # (B, L, K): exp(dQ)[y, x_t]
    w = (back * fwd).clamp(min=0)
    if s == 0 and process.mask_id is not None:  # at t = 0 nothing is masked; a learned score may not say so exactly
        w[..., process.mask_id] = 0
    return _draw(w)


@torch.no_grad()
def tweedie(score_fn: ScoreFn, process: Process, x: torch.Tensor, steps: int, t_max: float = 1 - 1e-5,
            fixed: torch.Tensor | None = None) -> torch.Tensor:
    """`fixed` positions (a prompt) are put back after every step."""
    grid = time_grid(steps, t_max)
    x_fixed = x
    for t, s in zip(grid[:-1].tolist(), grid[1:].tolist()):
        x = _keep(_tweedie_step(score_fn, process, x, t, s), x_fixed, fixed)
    return x


def _keep(x, x_fixed, fixed):
    return x if fixed is None else torch.where(fixed, x_fixed, x)


@torch.no_grad()
def euler(score_fn: ScoreFn, process: Process, x: torch.Tensor, steps: int, t_max: float = 1 - 1e-5,
          fixed: torch.Tensor | None = None) -> torch.Tensor:
    grid = time_grid(steps, t_max)
    x_fixed = x
    Q = process.generator(x.device).double()
    for i, (t, s) in enumerate(zip(grid[:-1].tolist(), grid[1:].tolist())):
        if i == steps - 1:  # last step: denoise with Tweedie down to t = 0
            return _keep(_tweedie_step(score_fn, process, x, t, s), x_fixed, fixed)
        d = float(process.sigma_bar(torch.tensor(t)) - process.sigma_bar(torch.tensor(s)))
        tt = torch.full((len(x),), t, device=x.device)
        jump = d * Q.T[x] * _ratios(score_fn(x, tt), x, Q)  # (B, L, K), 0 at y = x
        jump = jump.scatter(-1, x[..., None], 0.0)
        stay = (1 - jump.sum(-1, keepdim=True)).clamp(min=0)
        x = _keep(_draw(jump.scatter(-1, x[..., None], stay)), x_fixed, fixed)
    return x


# names carry the family (`euler` is taken by continuous diffusion); each is the name `--sampler` takes
# and the key the methods look the function up by
register_sampler("mdlm-ancestral", "discrete", "MDLM ancestral: reveal masked tokens with prob (alpha_s-alpha_t)/(1-alpha_t)")(ancestral)
register_sampler("sedd-euler", "discrete", "SEDD Euler / tau-leaping with the reverse rates Q[y,x] s_y")(euler)
register_sampler("sedd-tweedie", "discrete", "SEDD Tweedie tau-leaping (exact per-token denoising step)")(tweedie)
