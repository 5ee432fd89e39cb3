"""Variational lower bounds on mutual information, computed from a critic's score matrix.

A critic T(x, y) scores pairs; for a batch of N pairs (x_i, y_i) ~ p(x, y), scores[i, j] = T(x_i, y_j):
the diagonal holds samples from the joint, the off-diagonal ones (x_i, y_j), i != j, stand in for
samples from the product of marginals p(x)p(y). With r(x, y) = p(x, y) / (p(x)p(y)):

- InfoNCE (van den Oord et al. 2018):  I >= log N - mean_i [ -s_ii + log sum_j exp s_ij ]  =: I_NCE.
  Since the bracket is a cross-entropy (>= 0), I_NCE <= log N whatever the critic: it cannot report
  more than log N nats. Low variance, biased low when I is near or above log N.
  Tight (as N grows) for T = log r + any function of x.
- NWJ (Nguyen, Wainwright & Jordan 2010; f-GAN's KL bound):  I >= E_p[T] - e^{-1} E_q[e^T].
  Tight at T = 1 + log r; an unbiased estimate of a bound, but its variance grows like e^I.
- Donsker-Varadhan, the bound MINE maximises (Belghazi et al. 2018):  I >= E_p[T] - log E_q[e^T].
  Tight at T = log r + const. Its plug-in estimate is biased (log of a batch mean), and so is its
  gradient; MINE replaces the batch mean E_q[e^T] in the gradient's denominator by a moving average.

Critics: `SeparableCritic` T = f(x)^T g(y) (one pass per variable, N^2 dot products) and
`ConcatCritic` T = MLP([x; y]) on all N^2 pairs (more expressive, N^2 network passes).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepatlas.representation.infonce import info_nce


def _offdiag(scores: torch.Tensor) -> torch.Tensor:
    n = len(scores)
    return scores[~torch.eye(n, dtype=torch.bool, device=scores.device)]


def infonce_bound(scores: torch.Tensor) -> torch.Tensor:
    """log N - InfoNCE loss; never above log N."""
    return math.log(len(scores)) - info_nce(scores)


def nwj_bound(scores: torch.Tensor) -> torch.Tensor:
    """E_p[T] - E_q[exp(T - 1)], q = the off-diagonal pairs."""
    return scores.diagonal().mean() - (_offdiag(scores) - 1).exp().mean()


def dv_bound(scores: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan: E_p[T] - log E_q[exp T] (computed with logsumexp)."""
    q = _offdiag(scores)
    return scores.diagonal().mean() - (q.logsumexp(0) - math.log(len(q)))


class MineBound(nn.Module):
    """MINE: the DV bound's value, with a gradient whose E_q[e^T] denominator is an exponential moving
    average m <- (1 - rate) m + rate * batch mean (Belghazi et al. 2018, section 3.2), held in log space."""

    def __init__(self, rate: float = 0.01):
        super().__init__()
        self.rate = rate
        self.register_buffer("log_ma", torch.tensor(float("nan")))

    def forward(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (surrogate to maximise, DV bound value). The surrogate's gradient is
        grad E_p[T] - E_q[grad T e^T] / m."""
        q = _offdiag(scores)
        log_mean = q.logsumexp(0) - math.log(len(q))
        if self.training:
            with torch.no_grad():
                lm = log_mean.detach()
                keep = math.log1p(-self.rate) if self.rate < 1 else -math.inf  # rate 1: m is the batch mean
                self.log_ma.copy_(lm if torch.isnan(self.log_ma) else
                                  torch.logaddexp(self.log_ma + keep, lm + math.log(self.rate)))
        denom = self.log_ma if not torch.isnan(self.log_ma) else log_mean.detach()
        surrogate = scores.diagonal().mean() - (log_mean - denom).exp()
        return surrogate, scores.diagonal().mean() - log_mean


class SeparableCritic(nn.Module):
    """T(x, y) = f(x)^T g(y), f and g MLPs."""

    def __init__(self, dim_x: int, dim_y: int, hidden: int = 128, embed: int = 32):
        super().__init__()
        self.f = _mlp(dim_x, hidden, embed)
        self.g = _mlp(dim_y, hidden, embed)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.f(x) @ self.g(y).T  # (N, N)


class ConcatCritic(nn.Module):
    """T(x, y) = MLP([x; y]), evaluated on all N^2 pairs."""

    def __init__(self, dim_x: int, dim_y: int, hidden: int = 128):
        super().__init__()
        self.net = _mlp(dim_x + dim_y, hidden, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(x)
        pairs = torch.cat([x[:, None].expand(n, n, -1), y[None].expand(n, n, -1)], dim=-1)  # (N, N, dx+dy)
        return self.net(pairs).squeeze(-1)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


# --- the known-MI test case: correlated Gaussians ------------------------------------------------

def gaussian_mi(rho: float, dim: int) -> float:
    """I(X; Y) for y = rho x + sqrt(1 - rho^2) eps, x, eps ~ N(0, I_dim): -dim/2 log(1 - rho^2) nats."""
    return -0.5 * dim * math.log(1 - rho ** 2)


def correlated_gaussians(n: int, dim: int, rho: float, generator: torch.Generator | None = None):
    """n pairs (x, y), each (n, dim), with per-dimension correlation rho."""
    x = torch.randn(n, dim, generator=generator)
    eps = torch.randn(n, dim, generator=generator)
    return x, rho * x + math.sqrt(1 - rho ** 2) * eps


def gaussian_log_ratio(x: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
    """The optimal critic's core: log p(y_j | x_i) - log p(y_j), as an (N, N) matrix over all pairs."""
    v = 1 - rho ** 2
    diff = y[None] - rho * x[:, None]  # (N, N, dim)
    return (-0.5 * math.log(v) - diff.pow(2) / (2 * v) + y[None].pow(2) / 2).sum(-1)
