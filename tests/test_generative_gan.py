"""GAN: the trained discriminator approaches D*(x) = p_data / (p_data + p_g) for known 1-D densities;
loss identities; the gradient penalty on a linear critic; the mode counter on known samples."""

import math

import pytest
import torch

from deepatlas.data.base import DataInfo
from deepatlas.data.toy2d import gaussians8, gaussians8_centers
from deepatlas.generative.gan import GAN
from deepatlas.generative.gan_losses import discriminator_loss, generator_loss, gradient_penalty
from deepatlas.generative.modes import count_modes
from deepatlas.nn.mlp import mlp


def _normal_pdf(x, mu, s):
    return torch.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))


def test_trained_discriminator_approaches_optimal_discriminator():
    torch.manual_seed(0)
    D = mlp(1, 1, 32, 2, act=torch.nn.Tanh)
    opt = torch.optim.Adam(D.parameters(), lr=3e-3)
    for _ in range(1500):
        real = torch.randn(256, 1)  # p_data = N(0, 1)
        fake = 1.5 + 0.8 * torch.randn(256, 1)  # p_g = N(1.5, 0.8^2), a fixed "generator"
        loss = discriminator_loss("minimax", D(real)[:, 0], D(fake)[:, 0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.linspace(-1.5, 3.0, 91)[:, None]
    p_data, p_g = _normal_pdf(x, 0.0, 1.0), _normal_pdf(x, 1.5, 0.8)
    d_star = p_data / (p_data + p_g)
    with torch.no_grad():
        d = torch.sigmoid(D(x))
    assert (d - d_star).abs().max() < 0.05, (d - d_star).abs().max()
    # at the optimum the D loss is 2 log 2 - 2 JSD(p_data || p_g) > 0: the value of the minimax game
    assert loss.item() < 2 * math.log(2)


def test_generator_losses_share_sign_but_not_saturation():
    d_fake = torch.tensor([-8.0], requires_grad=True)  # D confidently rejects the fake
    (g_mm,) = torch.autograd.grad(generator_loss("minimax", d_fake), d_fake)
    (g_ns,) = torch.autograd.grad(generator_loss("non-saturating", d_fake), d_fake)
    assert g_mm.item() < 0 and g_ns.item() < 0  # both push D(G(z)) up
    assert abs(g_mm.item()) < 1e-3 and abs(g_ns.item()) > 0.99  # only the minimax gradient vanishes


def test_minimax_losses_are_the_binary_cross_entropy_terms():
    d_real, d_fake = torch.tensor([0.3, -1.2]), torch.tensor([2.0, -0.5])
    expected = -(torch.log(torch.sigmoid(d_real)).mean() + torch.log(1 - torch.sigmoid(d_fake)).mean())
    assert torch.allclose(discriminator_loss("minimax", d_real, d_fake), expected)
    assert torch.allclose(generator_loss("minimax", d_fake), torch.log(1 - torch.sigmoid(d_fake)).mean())


def test_gradient_penalty_of_linear_critic():
    a = torch.tensor([3.0, 4.0])
    critic = lambda x: x @ a  # noqa: E731  gradient norm 5 everywhere
    gp = gradient_penalty(critic, torch.randn(16, 2), torch.randn(16, 2))
    assert torch.allclose(gp, torch.tensor(16.0))


def test_count_modes_on_known_samples():
    g = torch.Generator().manual_seed(0)
    full = gaussians8(2500, g)
    r = count_modes(full, gaussians8_centers(), 0.1)
    assert r["modes"] == 8 and r["of_modes"] == 8
    assert abs(r["high_quality"] - (1 - math.exp(-4.5))) < 0.01  # P(|x - c| <= 3 std) for a 2-D Gaussian
    five = full[torch.cdist(full, gaussians8_centers()).argmin(1) < 5]
    assert count_modes(five, gaussians8_centers(), 0.1)["modes"] == 5
    between = torch.zeros(500, 2)  # all samples at the origin, 2 from every centre
    r = count_modes(between, gaussians8_centers(), 0.1)
    assert r["modes"] == 0 and r["high_quality"] == 0.0
    nearest = torch.cdist(full, gaussians8_centers()).argmin(1)
    seven = torch.cat([full[nearest != 0], gaussians8_centers()[:1].expand(5, 2)])  # 5 hits are not coverage
    assert count_modes(seven, gaussians8_centers(), 0.1)["modes"] == 7


@pytest.mark.parametrize("loss", ["minimax", "non-saturating", "wgan-gp"])
@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (1, 28, 28)])
def test_gan_phases_run_and_shapes(loss, shape):
    torch.manual_seed(0)
    kind = "vector" if len(shape) == 1 else "image"
    m = GAN(GAN.Config(loss=loss, n_critic=2, width=8), DataInfo(kind, shape))
    batch = {"x": torch.rand(4, *shape) * 2 - 1}
    phases = list(m.train_phases(batch))
    assert [p for p, _ in phases] == ["disc", "disc", "gen"]
    for _, closure in phases:
        out = closure()
        assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    assert m.draw(3).shape == (3, *shape)
    groups = m.optim_groups()
    assert {id(p) for p in groups["disc"]}.isdisjoint(id(p) for p in groups["gen"])


@pytest.mark.slow
def test_wgan_gp_covers_all_eight_gaussians():
    import tempfile

    from deepatlas.data.base import DataConfig
    from deepatlas.data.toy2d import load
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    data = load(DataConfig(name="toy2d", variant="gaussians8"))
    torch.manual_seed(0)
    m = GAN(GAN.Config(loss="wgan-gp", n_critic=5), data.info)
    with tempfile.TemporaryDirectory() as d:
        fit(m, data, TrainConfig(steps=2000, batch_size=256, lr=1e-3, beta1=0.5, warmup=0, grad_clip=0, ema_decay=0,
                                 ckpt_every=10**9), d, progress=False)
    r = count_modes(m.draw(2500), gaussians8_centers(), 0.1)
    assert r["modes"] == 8 and r["high_quality"] > 0.5, r


@pytest.mark.parametrize("loss,expected", [("wgan-gp", 5), ("non-saturating", 1), ("minimax", 1)])
def test_default_critic_steps(loss, expected):
    m = GAN(GAN.Config(loss=loss, width=8), DataInfo("vector", (2,)))
    phases = [p for p, _ in m.train_phases({"x": torch.randn(4, 2)})]
    assert phases == ["disc"] * expected + ["gen"]
