"""Continuous diffusion against closed forms: schedules, ODE convergence orders, sampler identities,
mode weights of a Gaussian mixture, preconditioning variances."""

import math

import pytest
import torch

from deepatlas.diffusion import samplers, sigma_grids, vp_schedule
from deepatlas.diffusion.ideal_denoiser import GaussianMixtureDenoiser
from deepatlas.diffusion.preconditioning import EDMPrecond, FlowPrecond, VEPrecond, VPPrecond


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_linear_beta_schedule_values():
    b = vp_schedule.betas("linear", 1000, 1e-4, 0.02)
    assert vp_schedule.sigmas(b)[-1].item() == pytest.approx(157.4, abs=0.05)
    assert vp_schedule.posterior_variance(b)[487].item() == pytest.approx(0.00979, abs=5e-6)


def test_cosine_schedule_is_monotone_and_ends_near_zero_signal():
    ab = vp_schedule.alpha_bar(vp_schedule.betas("cosine"))
    assert torch.all(ab[1:] < ab[:-1]) and ab[-1] < 1e-4 and ab[0] > 0.999


def test_sigma_to_t_inverts_the_table():
    table = vp_schedule.sigmas(vp_schedule.betas("linear"))
    t = torch.tensor([0.0, 1.0, 487.0, 998.0, 999.0])
    assert torch.allclose(vp_schedule.sigma_to_t(table[t.long()], table), t, atol=1e-6)


def _ode_errors(fn, steps):
    s, sigma_max = 0.5, 80.0
    D = GaussianMixtureDenoiser(torch.zeros(1, 1), torch.tensor([s]), torch.ones(1))
    xT = torch.linspace(-2, 2, 9)[:, None] * sigma_max
    exact = xT * s / math.sqrt(s ** 2 + sigma_max ** 2)  # x(sigma) = x_T sqrt((s^2 + sigma^2) / (s^2 + sigma_max^2))
    return [(fn(D, xT.clone(), sigma_grids.karras(n, 0.002, sigma_max).double()) - exact).abs().max().item()
            for n in steps]


def test_euler_is_first_order_and_heun_second_order():
    e = _ode_errors(samplers.euler, [32, 64, 128])
    h = _ode_errors(samplers.heun, [32, 64, 128])
    for a, b in zip(e, e[1:]):
        assert 1.8 < a / b < 2.2
    for a, b in zip(h, h[1:]):
        assert 3.5 < a / b < 5.0
    assert h[-1] < e[-1] / 10


def _ddim_reference(eps_model, x, timesteps, alpha_bar):
    """DDIM (eta = 0) in its own variables: x_{t'} = sqrt(ab') x0_hat + sqrt(1 - ab') eps_hat, final ab' = 1."""
    for i, t in enumerate(timesteps):
        ab = alpha_bar[t]
        ab_next = alpha_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.tensor(1.0)
        eps = eps_model(x, t)
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
    return x


def _mixture():
    return GaussianMixtureDenoiser(torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]]),
                                   torch.tensor([0.3, 0.5, 0.4]), torch.tensor([0.2, 0.3, 0.5]))


def test_ddim_eta0_equals_euler_in_sigma():
    D = _mixture()
    b = vp_schedule.betas("linear")
    ab = vp_schedule.alpha_bar(b)
    table = vp_schedule.sigmas(b)
    n = 20
    timesteps = (torch.arange(n - 1, -1, -1) * (1000 // n)).tolist()

    def eps_model(x, t):  # the same ideal model, asked in DDPM's variables
        sigma = table[t]
        x_hat = x / ab[t].sqrt()
        return (x_hat - D(x_hat, sigma)) / sigma

    xT = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    ref = _ddim_reference(eps_model, xT.clone(), timesteps, ab)
    grid = sigma_grids.ddim(n, table).double()
    x_hat_T = xT / ab[timesteps[0]].sqrt()
    ours_euler = samplers.euler(D, x_hat_T.clone(), grid)
    ours_ddim = samplers.ancestral(D, x_hat_T.clone(), grid, eta=0.0)
    assert torch.allclose(ours_euler, ref, atol=1e-10, rtol=1e-10)
    assert torch.allclose(ours_ddim, ref, atol=1e-10, rtol=1e-10)


def test_rectified_flow_euler_equals_edm_euler():
    D = _mixture()
    n = 12
    t = torch.linspace(0.999, 0, n + 1)
    x1 = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))

    def velocity(x, ti):  # v = (x_t - D) / t, D asked at x_hat = x_t / (1 - t), sigma = t / (1 - t)
        return (x - D(x / (1 - ti), ti / (1 - ti))) / ti

    x = x1.clone()
    for i in range(n):
        x = x + (t[i + 1] - t[i]) * velocity(x, t[i])
    ours = samplers.euler(D, x1 / (1 - t[0]), sigma_grids.uniform_t(n, 0.999).double())
    assert torch.allclose(ours, x, atol=1e-9, rtol=1e-9)


def test_ancestral_eta1_is_the_ddpm_posterior_step():
    """One eta=1 step from t to t-1 has DDPM's posterior mean and variance beta_tilde (in x = sqrt(ab) x_hat)."""
    b = vp_schedule.betas("linear")
    ab, table = vp_schedule.alpha_bar(b), vp_schedule.sigmas(b)
    t = 487
    x0, xt = torch.tensor([[0.3, -0.7]]), torch.tensor([[1.1, 0.4]])
    mean = (ab[t - 1].sqrt() * b[t] / (1 - ab[t])) * x0 + ((1 - b[t]).sqrt() * (1 - ab[t - 1]) / (1 - ab[t])) * xt
    var = vp_schedule.posterior_variance(b)[t]
    down, up = samplers.ancestral_step(table[t], table[t - 1], 1.0)
    x_hat = xt / ab[t].sqrt()
    ours_mean = (x0 + down * (x_hat - x0) / table[t]) * ab[t - 1].sqrt()
    assert torch.allclose(ours_mean, mean, rtol=1e-9)
    assert (up ** 2 * ab[t - 1]).item() == pytest.approx(var.item(), rel=1e-9)


@pytest.mark.parametrize("name,steps", [("ddpm", 1000), ("ddim", 50), ("euler", 50), ("heun", 18),
                                        ("dpmpp-2m", 20)])
def test_each_sampler_recovers_mixture_weights(name, steps):
    D = _mixture()
    fn, kind, fixed = samplers.SAMPLERS[name][:3]
    table = vp_schedule.sigmas(vp_schedule.betas("linear"))
    grid = {"ddpm": lambda: sigma_grids.ddpm(table), "ddim": lambda: sigma_grids.ddim(steps, table),
            "karras": lambda: sigma_grids.karras(steps, 0.002, 80.0)}[kind]().double()
    g = torch.Generator().manual_seed(0)
    n = 4000
    x = fn(D, torch.randn(n, 2, generator=g) * grid[0], grid, generator=g, **fixed)
    nearest = torch.cdist(x, D.means).argmin(1)
    freq = torch.bincount(nearest, minlength=3).double() / n
    assert torch.allclose(freq, D.weights, atol=0.03), freq  # binomial std ~ 0.008


@pytest.mark.parametrize("sigma_data", [0.25, 0.5, 1.0])
def test_edm_preconditioning_gives_unit_variance(sigma_data):
    p = EDMPrecond(sigma_data)
    g = torch.Generator().manual_seed(0)
    x0 = sigma_data * torch.randn(200000, generator=g)
    for sigma in [0.002, 0.1, 1.0, 10.0, 80.0]:
        s = torch.tensor(sigma)
        x = x0 + s * torch.randn(200000, generator=g)
        assert (p.c_in(s) * x).var().item() == pytest.approx(1.0, rel=0.02)
        target = (x0 - p.c_skip(s) * x) / p.c_out(s)
        assert target.var().item() == pytest.approx(1.0, rel=0.02)


def test_vp_input_is_unit_variance_for_unit_data_and_targets_are_natural():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(100000, generator=g)
    eps = torch.randn(100000, generator=g)
    for sigma in [0.01, 1.0, 157.0]:
        s = torch.tensor(sigma)
        x = x0 + s * eps
        vp, fl, ve = VPPrecond(1.0), FlowPrecond(), VEPrecond()
        assert (vp.c_in(s) * x).var().item() == pytest.approx(1.0, rel=0.02)
        assert torch.allclose((x0 - vp.c_skip(s) * x) / vp.c_out(s), eps, atol=1e-6 * max(1, sigma))
        assert torch.allclose((x0 - fl.c_skip(s) * x) / fl.c_out(s), eps - x0, atol=1e-6 * max(1, sigma))
        assert torch.allclose((x0 - ve.c_skip(s) * x) / ve.c_out(s), -eps, atol=1e-6 * max(1, sigma))
        for p in (vp, fl, ve, EDMPrecond(0.5)):
            assert (p.loss_weight(s) * p.c_out(s) ** 2).item() == pytest.approx(1.0)
