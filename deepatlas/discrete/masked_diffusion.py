"""Masked (absorbing) diffusion in continuous time: MDLM's ELBO, which with the log-linear schedule is
LLaDA's 1/t-weighted masked cross-entropy.

Each token is masked independently with probability 1 - alpha(t) = t. The negative ELBO of a sequence
x0 is (MDLM, eq. 10, with alpha = 1 - t so that -alpha'/(1 - alpha) = 1/t)

    NELBO(x0) = E_{t ~ U(0,1)} E_{x_t ~ q(.|x0)} [ (1/t) * sum_{l : x_t^l = MASK} -log p(x0^l | x_t) ],

the "SUBS" parameterisation: the network predicts only real tokens, and unmasked tokens are copied,
so only masked positions carry a loss. Summing over masks in closed form gives weight
1 / (k * C(L, k)) to each mask of k positions: the ELBO is the any-order autoregressive loss, and with
the exact conditionals it equals -log p(x0) (used as an oracle in the tests).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

LogProbFn = Callable[[torch.Tensor], torch.Tensor]  # x_t (B, L) -> log p(x0^l = y | x_t) (B, L, N)


def sample_times(n: int, t_min: float = 1e-3, t_max: float = 1.0, device=None) -> torch.Tensor:
    """Low-discrepancy times in [t_min, t_max] (MDLM): one uniform offset, n evenly spaced strata."""
    u = (torch.rand((), device=device) + torch.arange(n, device=device) / n) % 1.0
    return t_min + (t_max - t_min) * u


def mask_tokens(x0: torch.Tensor, t: torch.Tensor, mask_id: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """x_t: each token becomes MASK with probability t ((B,) or per token (B, L)); `keep` positions never do."""
    masked = torch.rand(x0.shape, device=x0.device) < (t[:, None] if t.dim() == 1 else t)
    if keep is not None:
        masked &= ~keep
    return torch.where(masked, torch.full_like(x0, mask_id), x0)


def masked_nelbo(logp: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, mask_id: int) -> torch.Tensor:
    """One-sample NELBO estimate per sequence (B,), nats: (1/t) * sum over masked positions of -log p(x0|x_t).
    t is (B,) or per token (B, L) (block diffusion: one time per block)."""
    nll = -logp.gather(-1, x0[..., None])[..., 0]  # (B, L)
    return (nll * (xt == mask_id) / (t[:, None] if t.dim() == 1 else t)).sum(-1)


def llada_nelbo(logp_fn: LogProbFn, x0: torch.Tensor, mask_id: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """LLaDA's lower-variance Monte-Carlo estimate (its eq. 14), one draw per sequence (B,): draw the number
    of masked tokens l ~ U{1..L'}, mask l positions uniformly at random among the L' maskable ones, and
    weight the masked cross-entropy by L'/l. Same expectation as `masked_nelbo`."""
    B, L = x0.shape
    can = torch.ones_like(x0, dtype=torch.bool) if keep is None else ~keep
    n = can.sum(-1)  # (B,) L'
    l = (torch.rand(B, device=x0.device) * n).floor().long() + 1  # (B,) uniform in 1..L'
    score = torch.rand(B, L, device=x0.device).masked_fill(~can, 2.0)
    rank = score.argsort(-1).argsort(-1)  # the l lowest-scored maskable positions get masked
    masked = rank < l[:, None]
    xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
    nll = -logp_fn(xt).gather(-1, x0[..., None])[..., 0]
    return (nll * masked).sum(-1) * n / l


def exact_nelbo(logp_fn: LogProbFn, x0: torch.Tensor, mask_id: int) -> torch.Tensor:
    """The NELBO by enumeration of all 2^L masks, weight 1 / (k C(L, k)) for a mask of k positions (B,).
    For tiny L only (tests)."""
    B, L = x0.shape
    total = torch.zeros(B, dtype=torch.float64, device=x0.device)
    for bits in itertools.product([False, True], repeat=L):
        k = sum(bits)
        if k == 0:
            continue
        masked = torch.tensor(bits, device=x0.device).expand(B, L)
        xt = torch.where(masked, torch.full_like(x0, mask_id), x0)
        nll = -logp_fn(xt).double().gather(-1, x0[..., None])[..., 0]
        total += (nll * masked).sum(-1) / (k * math.comb(L, k))
    return total
