"""The factorised log-densities against torch.distributions (a peer implementation)."""

import torch
from torch.distributions import Bernoulli, Independent, Normal

from deepatlas.generative.densities import bernoulli_log_prob, gaussian_log_prob


def test_gaussian_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x, mean, log_std = (torch.randn(3, 5, 7, generator=g, dtype=torch.float64) for _ in range(3))
    ref = Independent(Normal(mean, log_std.exp()), 1).log_prob(x)
    assert torch.allclose(gaussian_log_prob(x, mean, log_std), ref, atol=1e-12)
    assert torch.allclose(gaussian_log_prob(x), Independent(Normal(0.0, 1.0).expand(x.shape), 1).log_prob(x), atol=1e-12)


def test_bernoulli_log_prob_matches_torch_distributions_and_broadcasts():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 6, 9, generator=g, dtype=torch.float64)  # (k, B, D)
    x = (torch.rand(6, 9, generator=g) < 0.5).double()  # (B, D), broadcast over k
    ref = Independent(Bernoulli(logits=logits), 1).log_prob(x.expand_as(logits))
    assert torch.allclose(bernoulli_log_prob(logits, x), ref, atol=1e-12)
