"""The exact denoiser of a Gaussian mixture, for testing samplers without a network.

Data x0 ~ sum_k w_k N(mu_k, s_k^2 I). Then x_hat = x0 + sigma eps ~ sum_k w_k N(mu_k, (s_k^2 + sigma^2) I) and
    D(x; sigma) = E[x0 | x] = sum_k r_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)),
with responsibilities r_k(x) proportional to w_k N(x; mu_k, (s_k^2 + sigma^2) I).
"""

from __future__ import annotations

import torch


class GaussianMixtureDenoiser:
    def __init__(self, means: torch.Tensor, stds: torch.Tensor, weights: torch.Tensor):
        self.means = means.double()  # (K, d)
        self.stds = stds.double()  # (K,)
        self.weights = weights.double() / weights.sum()  # (K,)

    def __call__(self, x: torch.Tensor, sigma, y=None) -> torch.Tensor:
        xd = x.double().flatten(1)  # (B, d)
        sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1)  # (B or 1, 1)
        var = self.stds[None] ** 2 + sigma ** 2  # (B, K)
        d = xd.shape[1]
        sq = ((xd[:, None, :] - self.means[None]) ** 2).sum(-1)  # (B, K)
        logp = self.weights.log()[None] - 0.5 * sq / var - 0.5 * d * var.log()
        r = torch.softmax(logp, dim=1)  # (B, K)
        shrink = (self.stds[None] ** 2 / var)[..., None]  # (B, K, 1)
        post = self.means[None] + shrink * (xd[:, None, :] - self.means[None])  # (B, K, d)
        return (r[..., None] * post).sum(1).reshape(x.shape).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k, None] * noise
