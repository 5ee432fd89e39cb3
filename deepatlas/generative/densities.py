"""Log-densities of the factorised distributions the generative models are built from.

    Gaussian:   log N(x; m, diag s²) = Σ_d [ -1/2 ((x_d - m_d) / s_d)² - log s_d - 1/2 log 2π ],  s = exp(log_std)
    Bernoulli:  log Bern(x; sigmoid(l)) = Σ_d [ x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d) ]
                                         = -Σ_d BCE-with-logits(l_d, x_d)

Both sum over the last dimension and broadcast over the others (a VAE's k importance samples, a batch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean=0.0, log_std=0.0) -> torch.Tensor:
    """Sum over the last dim of log N(x; mean, exp(log_std)^2); mean and log_std tensors or numbers (0, 0: N(0, I))."""
    log_std = torch.as_tensor(log_std, dtype=x.dtype, device=x.device)
    return (-0.5 * ((x - mean) * torch.exp(-log_std)) ** 2 - log_std - 0.5 * LOG2PI).sum(-1)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum over the last dim of log Bernoulli(x; sigmoid(logits)); x (broadcast to logits' shape) in [0, 1]."""
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
