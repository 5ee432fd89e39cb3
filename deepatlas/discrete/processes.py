"""Forward corruption processes on sequences of tokens, each token independently: a continuous-time Markov
chain with rate matrix sigma(t) * Q over K states.

Conventions (row = from, column = to): Q[i, j] >= 0 is the rate of jumping i -> j for i != j and rows sum
to zero; the transition over a stretch of total rate d = sigma_bar(t) - sigma_bar(s) is exp(d Q), a
row-stochastic matrix P with P[i, j] = q(x_t = j | x_s = i).

The noise schedule is log-linear (MDLM, SEDD): alpha(t) = 1 - t is the probability that a token is
still untouched at time t, sigma_bar(t) = -log alpha(t) and sigma(t) = d sigma_bar / dt = 1 / (1 - t).

- Absorbing (masked): K = N + 1, the last state is [MASK]. Q = 1 e_M^T - I on the real tokens, so
  exp(d Q)[i, i] = e^-d, exp(d Q)[i, M] = 1 - e^-d, the mask row stays put; prior = all [MASK].
- Uniform: K = N, Q = 11^T / N - I, so exp(d Q) = e^-d I + (1 - e^-d) 11^T / N; prior = uniform.

Both closed forms also hold for negative d (the inverse matrix), which the Tweedie sampler uses.
"""

from __future__ import annotations

import torch


class Process:
    name: str
    n_tokens: int  # N real tokens
    n_states: int  # K states including [MASK] where there is one
    mask_id: int | None = None

    # log-linear schedule
    @staticmethod
    def alpha(t: torch.Tensor) -> torch.Tensor:
        return 1 - t

    @staticmethod
    def sigma_bar(t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-t)

    @staticmethod
    def sigma(t: torch.Tensor) -> torch.Tensor:
        return 1 / (1 - t)

    def generator(self, device=None) -> torch.Tensor:
        """Q (K, K), rows sum to 0."""
        raise NotImplementedError

    def transition(self, d: torch.Tensor) -> torch.Tensor:
        """exp(d Q) in closed form; d (...,) -> (..., K, K), on d's device."""
        raise NotImplementedError

    def marginal(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x0) for every state: x0 (B, L), t (B,) -> (B, L, K)."""
        return self.transition(self.sigma_bar(t))[torch.arange(len(x0), device=x0.device)[:, None], x0]

    def sample(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x0): keep each token with probability alpha(t), else replace it."""
        keep = torch.rand(x0.shape, device=x0.device) < self.alpha(t)[:, None]
        return torch.where(keep, x0, self._replacement(x0))

    def prior_sample(self, shape, device=None) -> torch.Tensor:
        return self._replacement(torch.zeros(shape, dtype=torch.long, device=device))

    def _replacement(self, x0: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Absorbing(Process):
    name = "absorbing"

    def __init__(self, n_tokens: int):
        self.n_tokens, self.n_states, self.mask_id = n_tokens, n_tokens + 1, n_tokens

    def generator(self, device=None) -> torch.Tensor:
        Q = -torch.eye(self.n_states, device=device)
        Q[:, self.mask_id] += 1
        return Q

    def transition(self, d: torch.Tensor) -> torch.Tensor:
        d = _as_float(d)
        e = torch.exp(-d)[..., None, None]
        eye = torch.eye(self.n_states, dtype=d.dtype, device=d.device)
        to_mask = torch.zeros(self.n_states, self.n_states, dtype=d.dtype, device=d.device)
        to_mask[:, self.mask_id] = 1
        real = torch.ones(self.n_states, dtype=d.dtype, device=d.device)
        real[self.mask_id] = 0
        stay_mask = torch.zeros_like(eye)
        stay_mask[self.mask_id, self.mask_id] = 1
        return e * eye * real[:, None] + (1 - e) * to_mask * real[:, None] + stay_mask

    def _replacement(self, x0):
        return torch.full_like(x0, self.mask_id)


class Uniform(Process):
    name = "uniform"

    def __init__(self, n_tokens: int):
        self.n_tokens = self.n_states = n_tokens

    def generator(self, device=None) -> torch.Tensor:
        N = self.n_states
        return torch.full((N, N), 1 / N, device=device) - torch.eye(N, device=device)

    def transition(self, d: torch.Tensor) -> torch.Tensor:
        d = _as_float(d)
        e = torch.exp(-d)[..., None, None]
        N, like = self.n_states, {"dtype": d.dtype, "device": d.device}
        return e * torch.eye(N, **like) + (1 - e) * torch.full((N, N), 1 / N, **like)

    def _replacement(self, x0):
        return torch.randint(0, self.n_states, x0.shape, device=x0.device)


def _as_float(d) -> torch.Tensor:
    d = torch.as_tensor(d)
    return d if d.is_floating_point() else d.float()


PROCESSES = {"absorbing": Absorbing, "uniform": Uniform}
