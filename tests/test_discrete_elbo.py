"""ELBOs against enumeration on a tiny vocabulary (3 tokens) and length (3).

- The masked-diffusion NELBO summed over all 2^L masks with the exact conditionals equals -log p(x0)
  (the ELBO is the any-order AR loss); with a wrong denoiser it is larger.
- Both Monte-Carlo estimators (MDLM: draw t; LLaDA: draw the number of masks) are unbiased for it.
- The score-entropy integral with the exact ratios equals -log p(x0) for absorbing and uniform.
"""

import itertools

import numpy as np
import pytest
import torch

from deepatlas.discrete.exact import ExactDistribution
from deepatlas.discrete.masked_diffusion import exact_nelbo, llada_nelbo, mask_tokens, masked_nelbo, sample_times
from deepatlas.discrete.processes import Absorbing, Uniform
from deepatlas.discrete.score_entropy import score_entropy

V, L = 3, 3


@pytest.fixture(scope="module")
def data():
    return ExactDistribution.random(V, L, seed=0), ExactDistribution.random(V, L, seed=1)


def test_exact_masked_nelbo_equals_nll_with_exact_denoiser(data):
    D, wrong = data
    mask = V
    nelbo = exact_nelbo(lambda xt: D.logp_x0(xt, mask), D.seqs, mask)
    assert torch.allclose(nelbo, D.nll(D.seqs), atol=1e-10)
    worse = exact_nelbo(lambda xt: wrong.logp_x0(xt, mask), D.seqs, mask)
    assert (D.probs * worse).sum() > (D.probs * nelbo).sum() + 0.05  # a wrong denoiser pays


@pytest.mark.parametrize("estimator", ["time", "count"])
def test_monte_carlo_nelbo_is_unbiased(data, estimator):
    D, wrong = data
    torch.manual_seed(0)
    mask, n = V, 100_000
    logp = lambda xt: wrong.logp_x0(xt, mask)  # noqa: E731  any denoiser: unbiasedness must not need the right one
    x0 = D.seqs[[0, 7, 19]].repeat(n, 1)  # interleaved, so the stratified times cover each sequence evenly
    if estimator == "time":
        t = sample_times(len(x0), 0.0, 1.0)
        xt = mask_tokens(x0, t, mask)
        est = masked_nelbo(logp(xt), x0, xt, t, mask)
    else:
        est = llada_nelbo(logp, x0, mask)
    est = est.view(n, 3).T
    exact = exact_nelbo(logp, D.seqs[[0, 7, 19]], mask)
    se = est.std(1) / n ** 0.5
    assert ((est.mean(1) - exact).abs() < 4 * se + 1e-3).all(), (est.mean(1), exact, se)


@pytest.mark.parametrize("proc", [Absorbing(V), Uniform(V)], ids=lambda p: p.name)
def test_score_entropy_with_exact_ratios_integrates_to_nll(data, proc):
    D, _ = data
    x0 = D.seqs[[0, 5, 13, 26]]
    states = torch.tensor(list(itertools.product(range(proc.n_states), repeat=L)))  # every x_t
    nodes, weights = np.polynomial.legendre.leggauss(80)
    total = torch.zeros(len(x0), dtype=torch.float64)
    for u, w in zip(nodes, weights):
        t = torch.full((len(x0),), (u + 1) / 2, dtype=torch.float64)
        q = proc.marginal(x0, t)  # (B, L, K)
        for st in states:
            xt = st.expand(len(x0), L)
            p_xt = q.gather(-1, xt[..., None])[..., 0].prod(-1)
            if p_xt.max() == 0:
                continue
            se = score_entropy(D.log_score(xt, t, proc), xt, x0, t, proc)
            total += w / 2 * torch.where(p_xt > 0, p_xt * se, torch.zeros_like(se))
    assert torch.allclose(total, D.nll(x0), atol=2e-3), (total, D.nll(x0))
