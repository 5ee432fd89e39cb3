"""The ELBO and the importance-weighted bound (Burda et al. 2016) for any latent-variable model that
gives an encoder q(z|x) and a log joint log p(x, z).

With log weights  log w_i = log p(x, z_i) - log q(z_i|x),  z_i ~ q(z|x):
    ELBO     = E log w                               (k = 1)
    L_k      = E log (1/k) sum_i w_i                  (IWAE bound)
    ELBO = L_1 <= L_k <= L_{k+1} <= log p(x), and L_k -> log p(x) as k grows.
For evaluation with large k (5000) the weights are drawn in chunks and combined with a running
logsumexp, so memory stays (batch x chunk).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class LatentModel(Protocol):
    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """(B, ...) -> (k, B) values of log p(x, z) - log q(z|x) for z ~ q(z|x)."""


def iwae_bound(model: LatentModel, x: torch.Tensor, k: int, chunk: int = 0) -> torch.Tensor:
    """(B,) estimates of L_k; `chunk` samples at a time (0: all k at once)."""
    chunk = chunk or k
    total = torch.full((len(x),), -math.inf, dtype=torch.float64, device=x.device)
    done = 0
    while done < k:
        m = min(chunk, k - done)
        lw = model.log_weights(x, m).double()  # (m, B)
        total = torch.logaddexp(total, torch.logsumexp(lw, dim=0))
        done += m
    return (total - math.log(k)).to(x.dtype if x.is_floating_point() else torch.float32)


def elbo(model: LatentModel, x: torch.Tensor) -> torch.Tensor:
    return model.log_weights(x, 1)[0]
