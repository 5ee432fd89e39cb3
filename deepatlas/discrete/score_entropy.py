"""SEDD's denoising score entropy (Lou, Meng & Ermon 2024), for any process of `processes.py`.

The network gives, for each position l and state y, a ratio s(x_t)_{l,y} ~ p_t(x_t with x^l := y) / p_t(x_t)
(the "concrete score"). With r_y = q_t(y | x0^l) / q_t(x_t^l | x0^l) and K(r) = r log r - r, the loss

    L(x0) = int_0^1 E_{x_t} sum_l sum_{y != x_t^l} sigma(t) Q[y, x_t^l] * ( s_y - r_y log s_y + K(r_y) ) dt

bounds -log p(x0) (plus the prior mismatch at t = 1, zero for the log-linear schedule), with equality for
the exact ratios. Q[y, x] is the forward rate y -> x: for absorbing only masked positions count (every
real y jumps to MASK at rate sigma); for uniform every y != x_t counts with rate sigma / N.
"""

from __future__ import annotations

import torch

from deepatlas.discrete.processes import Process


def score_entropy(log_s: torch.Tensor, xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, process: Process) -> torch.Tensor:
    """Integrand at time t per sequence (B,), nats: log_s (B, L, K) are the model's log ratios."""
    q = process.marginal(x0, t).to(log_s.dtype)  # (B, L, K) q_t(y | x0)
    r = q / q.gather(-1, xt[..., None])  # r_y
    Q = process.generator(log_s.device).to(log_s.dtype)
    w = process.sigma(t).to(log_s.dtype)[:, None, None] * Q.T[xt]  # (B, L, K): rate y -> x_t^l
    valid = w > 0  # excludes y = x_t^l (negative diagonal) and zero rates
    log_s = torch.where(valid, log_s, torch.zeros_like(log_s))
    term = log_s.exp() - r * log_s + torch.xlogy(r, r) - r
    return (torch.where(valid, w * term, torch.zeros_like(term))).sum((1, 2))


def prior_kl(x0: torch.Tensor, t: torch.Tensor, process: Process) -> torch.Tensor:
    """KL(q_t(. | x0) || prior) per sequence (B,), the term the integral up to t < 1 leaves out (uniform)."""
    q = process.marginal(x0, t)
    if process.mask_id is not None:
        return q.new_zeros(len(x0))  # absorbing: taken as 0, q_t puts mass alpha(t) ~ 0 off MASK
    return torch.xlogy(q, q * process.n_states).sum((1, 2))
