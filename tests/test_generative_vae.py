"""VAE and the IWAE bound: ELBO <= L_k <= L_k' <= log p(x) (k <= k'); on a linear-Gaussian model (exact
marginal known) and on a 1-D-latent VAE (marginal by quadrature) the bounds approach log p(x)."""

import itertools
import math

import torch

from deepatlas.data.base import DataInfo
from deepatlas.generative.iwae import elbo, iwae_bound
from deepatlas.generative.densities import gaussian_log_prob
from deepatlas.generative.vae import VAE


class LinearGaussian:
    """p(z) = N(0, I_L), p(x|z) = N(W z + b, s^2 I_D), with a deliberately imperfect q(z|x) = N(A x, diag e^{2r})."""

    def __init__(self, D=4, L=2, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(D, L, generator=g, dtype=torch.float64)
        self.b = torch.randn(D, generator=g, dtype=torch.float64)
        self.s = 0.7
        self.A = 0.3 * torch.randn(L, D, generator=g, dtype=torch.float64)
        self.r = torch.full((L,), -0.2, dtype=torch.float64)

    def log_weights(self, x, k):
        mu = x @ self.A.T
        log_std = self.r.expand_as(mu)
        z = mu + torch.exp(log_std) * torch.randn(k, *mu.shape, dtype=torch.float64)
        log_q = gaussian_log_prob(z, mu, log_std)
        log_prior = gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
        mean = z @ self.W.T + self.b
        return gaussian_log_prob(x, mean, torch.full_like(mean, math.log(self.s))) + log_prior - log_q

    def exact_log_px(self, x):
        cov = self.W @ self.W.T + self.s ** 2 * torch.eye(len(self.b), dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)


def test_linear_gaussian_bounds_approach_exact_marginal():
    torch.manual_seed(0)
    model = LinearGaussian()
    x = model.b + torch.randn(6, 4, dtype=torch.float64) @ torch.diag(torch.tensor([1.0, 2, 1, 0.5], dtype=torch.float64))
    exact = model.exact_log_px(x)
    e = torch.stack([elbo(model, x) for _ in range(400)]).mean(0)
    l10 = torch.stack([iwae_bound(model, x, 10) for _ in range(40)]).mean(0)
    l5000 = iwae_bound(model, x, 5000, chunk=700)
    assert (e < l10).all() and (l10 < exact + 0.02).all()
    gap_e, gap_10, gap_5000 = (exact - e).mean(), (exact - l10).mean(), (exact - l5000).abs().mean()
    assert gap_e > 0.5  # the imperfect encoder leaves a real ELBO gap
    assert gap_10 < gap_e and gap_5000 < 0.05 * gap_e, (gap_e, gap_10, gap_5000)


def test_chunked_iwae_is_the_logmeanexp_of_all_chunks():
    model = LinearGaussian()
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.manual_seed(5)
    chunked = iwae_bound(model, x, 300, chunk=100)
    torch.manual_seed(5)
    lw = torch.cat([model.log_weights(x, 100) for _ in range(3)])  # (300, B), the same draws
    assert torch.allclose(chunked, torch.logsumexp(lw, 0) - math.log(300))
    torch.manual_seed(5)
    whole = iwae_bound(model, x, 300)
    torch.manual_seed(5)
    assert torch.allclose(whole, torch.logsumexp(model.log_weights(x, 300), 0) - math.log(300))


def _vae(latent=1, seed=0):
    torch.manual_seed(seed)
    info = DataInfo("vector", (10,), extra={"binary": True})
    m = VAE(VAE.Config(latent=latent, hidden=16, depth=1), info).double().eval()
    with torch.no_grad():  # a sharper decoder than at init, so the posterior is far from the prior
        for p in m.decoder.parameters():
            p.mul_(3)
    return m


def _quadrature_log_px(m, x, n=4001, lim=8.0):
    z = torch.linspace(-lim, lim, n, dtype=torch.float64)[:, None, None].expand(n, len(x), 1)
    lp = m.log_px_given_z(x, z) + (-0.5 * z[..., 0] ** 2 - 0.5 * math.log(2 * math.pi))
    return torch.logsumexp(lp, 0) + math.log(2 * lim / (n - 1))


def test_vae_iwae_5000_reaches_quadrature_marginal():
    m = _vae()
    all_x = torch.tensor(list(itertools.product([0.0, 1.0], repeat=10)), dtype=torch.float64)
    with torch.no_grad():
        lp_all = _quadrature_log_px(m, all_x)
        assert abs(torch.logsumexp(lp_all, 0).item()) < 1e-6  # the quadrature is a normalised p(x)
        x = all_x[[0, 37, 512, 1000]]
        exact = _quadrature_log_px(m, x)
        torch.manual_seed(0)
        e = torch.stack([elbo(m, x) for _ in range(200)]).mean(0)
        l5000 = iwae_bound(m, x, 5000, chunk=1000)
    gap = exact - e
    assert (gap > 0.1).all(), gap
    err = (l5000 - exact).abs()  # a Monte-Carlo estimate: it may land a little above log p(x)
    assert err.mean() < 0.02 and (err < 0.2 * gap).all(), (l5000, exact, gap)


def test_iwae_does_not_decrease_with_k_and_is_above_elbo():
    m = _vae(latent=2, seed=1)
    x = torch.bernoulli(torch.full((8, 10), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    with torch.no_grad():
        means = [torch.stack([iwae_bound(m, x, k) for _ in range(300)]).mean().item() for k in (1, 2, 5, 20, 100)]
        e = torch.stack([elbo(m, x) for _ in range(300)]).mean().item()
    assert abs(means[0] - e) < 0.1  # L_1 is the ELBO
    assert all(b > a for a, b in zip(means, means[1:])), means


def test_vae_trains_on_binarised_digits_with_iwae_option():
    import tempfile

    from deepatlas.data.base import DataConfig
    from deepatlas.data.digits import load
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    data = load(DataConfig(name="digits", binarize=True))
    torch.manual_seed(0)
    m = VAE(VAE.Config(latent=8, hidden=64, k=5), data.info)
    with tempfile.TemporaryDirectory() as d:
        fit(m, data, TrainConfig(steps=200, batch_size=64, lr=3e-3, warmup=10, ema_decay=0, ckpt_every=10_000), d,
            progress=False)
    r = m.evaluate(data, 100, k=200)
    assert r["nll_iwae200_nats"] <= r["nll_elbo_nats"] + 0.05
    assert r["nll_elbo_nats"] < 64 * math.log(2) * 0.75, r
    assert m.sample(4, torch.Generator().manual_seed(0)).shape == (4, 1, 8, 8)
