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


def test_gradient_penalty_is_taken_at_the_interpolates():
    """Non-linear critic D(x) = sum sin(x), grad = cos(x): the penalty must be E(|cos(x_hat)| - 1)^2 at
    x_hat = eps x + (1 - eps) x_fake with the same eps the function draws (replayed from the seed), and must
    differ from the penalty at the real or the fake points."""
    critic = lambda x: torch.sin(x).flatten(1).sum(1)  # noqa: E731
    g = torch.Generator().manual_seed(1)
    real, fake = 2 * torch.randn(32, 3, 2, generator=g, dtype=torch.float64), torch.randn(32, 3, 2, generator=g, dtype=torch.float64)
    torch.manual_seed(7)
    gp = gradient_penalty(critic, real, fake)
    torch.manual_seed(7)
    eps = torch.rand(32, 1, 1, dtype=torch.float64)
    by_hand = lambda x: (torch.cos(x).flatten(1).norm(dim=1) - 1).pow(2).mean()  # noqa: E731
    assert torch.allclose(gp, by_hand(eps * real + (1 - eps) * fake), rtol=1e-12)
    assert not torch.allclose(gp, by_hand(real), rtol=1e-2) and not torch.allclose(gp, by_hand(fake), rtol=1e-2)


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
    assert m.sample(3, torch.Generator().manual_seed(0)).shape == (3, *shape)
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
    r = count_modes(m.sample(2500, torch.Generator().manual_seed(0)), gaussians8_centers(), 0.1)
    assert r["modes"] == 8 and r["high_quality"] > 0.5, r


@pytest.mark.parametrize("loss,expected", [("wgan-gp", 5), ("non-saturating", 1), ("minimax", 1)])
def test_default_critic_steps(loss, expected):
    m = GAN(GAN.Config(loss=loss, width=8), DataInfo("vector", (2,)))
    phases = [p for p, _ in m.train_phases({"x": torch.randn(4, 2)})]
    assert phases == ["disc"] * expected + ["gen"]


def test_dcgan_nets_start_from_dcgan_init():
    """Radford et al. 2015: weights N(0, 0.02), batch-norm gamma N(1, 0.02), beta 0 (default torch init differs)."""
    torch.manual_seed(0)
    m = GAN(GAN.Config(loss="non-saturating"), DataInfo("image", (1, 28, 28)))
    convs = [p for mod in m.modules() if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))
             for p in [mod.weight]]
    w = torch.cat([p.flatten() for p in convs])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    for p in convs:  # each layer, not only their pool (the default init's std shrinks with fan-in)
        assert abs(p.std().item() - 0.02) < 0.004, p.shape
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns
    gamma = torch.cat([b.weight.flatten() for b in bns])
    assert abs(gamma.mean().item() - 1) < 2e-3 and abs(gamma.std().item() - 0.02) < 3e-3
    assert all((b.bias == 0).all() for b in bns)


def test_each_critic_step_sees_a_fresh_real_batch(tmp_path):
    """Through the trainer, WGAN-GP's 5 critic updates of one step each get their own batch_size real
    examples (Gulrajani et al. 2017, Algorithm 1), not the same batch five times."""
    from deepatlas.data.base import DataConfig
    from deepatlas.data.toy2d import load
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    data = load(DataConfig(name="toy2d", variant="gaussians8", size=200))
    torch.manual_seed(0)
    m = GAN(GAN.Config(loss="wgan-gp", width=8, depth=1), data.info)
    seen = []
    d_loss = m.d_loss
    m.d_loss = lambda real: (seen.append(real.detach().clone()), d_loss(real))[1]
    fit(m, data, TrainConfig(steps=2, batch_size=8, warmup=0, ckpt_every=10**9), tmp_path, progress=False)
    assert len(seen) == 10 and all(r.shape == (8, 2) for r in seen)
    for step in (seen[:5], seen[5:]):
        rows = torch.cat(step)
        assert len(torch.unique(rows, dim=0)) == 40  # 5 x 8 distinct examples in one step
