"""Flows: exact inverses, log-determinants equal to the autograd Jacobian's, identity init = base density,
and a trained flow's likelihood beats the base density."""

import math

import pytest
import torch

from deepatlas.data.base import DataInfo
from deepatlas.generative.flows.actnorm import ActNorm
from deepatlas.generative.flows.base import Sequence, log_prob, standard_normal_log_prob
from deepatlas.generative.flows.coupling import AffineCoupling, checkerboard_mask
from deepatlas.generative.flows.dequantize import bits_per_dim, dequantize, to_image
from deepatlas.generative.flows.glow import glow
from deepatlas.generative.flows.invconv import InvConv1x1
from deepatlas.generative.flows.maf import maf
from deepatlas.generative.flows.multiscale import squeeze, unsqueeze
from deepatlas.generative.flows.planar import Planar
from deepatlas.generative.flows.realnvp import realnvp
from deepatlas.nn.coupling_convnet import ConvNet


def _randomise(flow, scale=0.3, seed=0):
    """Move every parameter off its (often identity) initial value, so the checks are not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    for m in flow.modules():
        if isinstance(m, ActNorm):
            m.initialized.fill_(1)
    return flow.double().eval()


IMAGE = (1, 4, 4)  # 16 dims: small enough for a full Jacobian


def _flows():
    torch.manual_seed(0)
    return {
        "planar": Sequence([Planar(3) for _ in range(4)]),
        "realnvp-vec": realnvp((4,), steps=4, hidden=16),
        "glow-vec": glow((4,), steps=3, hidden=16),
        "maf": maf(5, layers=3, hidden=16),
        "realnvp-img": realnvp(IMAGE, steps=2, levels=2, hidden=8),
        "glow-img": glow(IMAGE, steps=2, levels=2, hidden=8),
    }


def _input(name, n=5):
    g = torch.Generator().manual_seed(1)
    dim = {"planar": (3,), "realnvp-vec": (4,), "glow-vec": (4,), "maf": (5,)}.get(name, IMAGE)
    return torch.randn(n, *dim, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", list(_flows()))
def test_inverse_of_forward_is_identity(name):
    flow = _randomise(_flows()[name])
    x = _input(name)
    z, _ = flow(x)
    back = flow.inverse(z)
    assert z.shape[0] == x.shape[0]
    assert torch.allclose(back, x, atol=1e-5), (back - x).abs().max()
    assert not torch.allclose(z.flatten(1), x.flatten(1), atol=1e-3)  # the randomised flow is not the identity


@pytest.mark.parametrize("name", list(_flows()))
def test_logdet_matches_autograd_jacobian(name):
    flow = _randomise(_flows()[name])
    x = _input(name, n=3)
    _, logdet = flow(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0].flatten(), x[i])
        jac = jac.reshape(jac.shape[0], -1)
        expected = torch.linalg.slogdet(jac)[1]
        assert torch.allclose(logdet[i], expected, atol=1e-6), (name, logdet[i].item(), expected.item())


@pytest.mark.parametrize("name", ["realnvp-vec", "glow-vec", "maf", "realnvp-img", "glow-img", "planar"])
def test_identity_initialised_flow_gives_base_density(name):
    torch.manual_seed(0)
    flows = {"realnvp-vec": realnvp((4,), hidden=16), "glow-vec": glow((4,), hidden=16, identity=True),
             "maf": maf(5, hidden=16), "realnvp-img": realnvp(IMAGE, steps=2, hidden=8),
             "glow-img": glow(IMAGE, steps=2, hidden=8, identity=True), "planar": Sequence([Planar(3) for _ in range(3)])}
    flow = flows[name].double().eval()  # eval: actnorm not initialised = identity
    x = _input(name)
    assert torch.allclose(log_prob(flow, x), standard_normal_log_prob(x), atol=1e-10)


def test_random_rotation_glow_still_gives_base_density():
    """A rotation (random orthogonal 1x1 conv) and the squeeze/split permutations keep N(0, I) exactly."""
    torch.manual_seed(0)
    flow = glow(IMAGE, steps=2, hidden=8).double().eval()
    x = _input("glow-img")
    assert torch.allclose(log_prob(flow, x), standard_normal_log_prob(x), atol=1e-10)


def test_squeeze_roundtrip_and_layout():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    s = squeeze(x)
    assert s.shape == (2, 12, 2, 3)
    assert torch.equal(unsqueeze(s), x)
    assert torch.equal(s[0, :4, 0, 0], torch.tensor([x[0, 0, 0, 0], x[0, 0, 0, 1], x[0, 0, 1, 0], x[0, 0, 1, 1]]))


def test_actnorm_data_init_whitens_first_batch():
    x = 3 + 2 * torch.randn(64, 3, 5, 5)
    a = ActNorm(3).train()
    y, logdet = a(x)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3)), torch.ones(3), atol=1e-4)
    assert torch.allclose(logdet, -25 * torch.log(x.std((0, 2, 3))).sum().expand(64), atol=1e-3)


def test_coupling_leaves_masked_half_unchanged():
    c = AffineCoupling(checkerboard_mask(1, 4, 4), ConvNet(1, 2, 8, zero_out=False))
    x = torch.randn(2, 1, 4, 4)
    y, _ = c(x)
    m = c.mask.bool().expand_as(x)
    assert torch.equal(y[m], x[m]) and not torch.allclose(y[~m], x[~m])


def test_invconv_logdet_counts_pixels():
    conv = InvConv1x1(3)
    with torch.no_grad():
        conv.weight.copy_(torch.diag(torch.tensor([2.0, 1.0, 0.5])) * 3)
    _, ld = conv(torch.randn(2, 3, 4, 5))
    assert torch.allclose(ld, torch.full((2,), 20 * 3 * math.log(3.0)), atol=1e-5)


def test_dequantisation_roundtrip_and_bits_per_dim_of_uniform():
    k = torch.randint(0, 256, (4, 1, 3, 3)).float()
    x = k / 255 * 2 - 1
    v = dequantize(x, 256)
    assert ((v + 0.5) * 256 >= k).all() and ((v + 0.5) * 256 < k + 1).all()
    assert torch.equal(to_image(v, 256), x)
    # the uniform density on [-1/2, 1/2]^D has log p = 0: exactly 8 bits/dim for 256 levels
    assert torch.allclose(bits_per_dim(torch.zeros(4), 9, 256), torch.full((4,), 8.0))


def test_realnvp_method_learns_moons():
    from deepatlas.data.base import DataConfig
    from deepatlas.data.toy2d import load
    from deepatlas.generative.flows.flow_method import RealNVP
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit
    import tempfile

    data = load(DataConfig(name="toy2d", variant="moons", size=2000))
    torch.manual_seed(0)
    m = RealNVP(RealNVP.Config(steps=4, hidden=32), data.info)
    before = m.evaluate(data, 500)["nll_nats"]
    with tempfile.TemporaryDirectory() as d:
        fit(m, data, TrainConfig(steps=300, batch_size=128, lr=3e-3, warmup=10, ema_decay=0, ckpt_every=10_000), d,
            progress=False)
    after = m.evaluate(data, 500)["nll_nats"]
    assert after < before - 0.5 and after < 2.2, (before, after)
    s = m.sample(100, torch.Generator().manual_seed(0))
    assert s.shape == (100, 2) and torch.isfinite(s).all()


def test_flows_refuse_binary_data():
    from deepatlas.errors import UserError
    from deepatlas.generative.flows.flow_method import Glow

    with pytest.raises(UserError, match="binarize"):
        Glow(Glow.Config(), DataInfo("image", (1, 8, 8), 10, {"binary": True}))


def test_too_many_levels_is_a_user_error():
    from deepatlas.errors import UserError
    from deepatlas.generative.flows.flow_method import Glow

    with pytest.raises(UserError, match="--model-levels"):
        Glow(Glow.Config(levels=3), DataInfo("image", (1, 28, 28), 10, {"levels": 256}))


def test_multiscale_on_fashion_sized_images_inverts():
    torch.manual_seed(0)
    flow = _randomise(glow((1, 28, 28), steps=1, levels=2, hidden=4), scale=0.05)
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    z, _ = flow(x)
    assert z.shape == (2, 784)
    assert torch.allclose(flow.inverse(z), x, atol=1e-5)


@pytest.mark.parametrize("name", list(_flows()))
def test_log_prob_stays_on_the_device_of_the_input(name):
    """The meta device stands in for a GPU (the trainer moves methods there when one exists): no part of
    the log-density may be made on the CPU. (eval: a meta tensor cannot answer actnorm's "initialised?")"""
    flow = _flows()[name].to("meta").eval()
    x = _input(name).float().to("meta")
    lp = log_prob(flow, x)
    assert lp.device.type == "meta" and lp.shape == (len(x),)


def test_draw_stays_on_the_device_of_the_flow():
    from deepatlas.generative.flows.flow_method import RealNVP

    m = RealNVP(RealNVP.Config(steps=2, hidden=8), DataInfo("vector", (2,))).to("meta")
    assert m.sample(3, torch.Generator().manual_seed(0)).device.type == "meta"


@pytest.mark.parametrize("wu", [-1e4, -50.0, -1.0, 0.0, 30.0])
def test_planar_keeps_w_dot_u_hat_above_minus_one_for_adversarial_u(wu):
    """u chosen so that w.u is very negative (softplus underflows to 0 in float32): w.u_hat stays >= -1 + margin,
    so at a = w.x + b = 0 (where h' = 1) the Jacobian 1 + w.u_hat is >= the margin, matching autograd."""
    from deepatlas.generative.flows.planar import DELTA

    torch.manual_seed(0)
    f = Planar(4, identity=False)
    with torch.no_grad():
        f.w.copy_(torch.tensor([3.0, -1.0, 0.5, 2.0]))
        f.u.copy_(wu * f.w / f.w.dot(f.w) + torch.tensor([1.0, 3.0, 0.0, 0.0]) * 0.1)
        f.b.zero_()
    c = float(f.w.detach().double().dot(f.u_hat().detach().double()))  # in float64 from the float32 u_hat
    assert c >= -1 + DELTA * 0.99, c
    x = torch.zeros(1, 4)  # a = 0: the worst point, h' = 1
    y, logdet = f(x)
    jac = torch.autograd.functional.jacobian(lambda v: f(v[None])[0][0], x[0]).double()
    det = float(torch.linalg.det(jac))
    assert det > 0 and logdet.item() >= math.log(DELTA) - 1e-3
    # the log-det uses the scalar m; the map uses the float32 vector u_hat, whose w.u_hat carries a rounding
    # error of about |u| * 1e-7: the two Jacobians agree to that
    assert abs(det - math.exp(logdet.item())) < 1e-6 * (1 + abs(wu)), (det, math.exp(logdet.item()))
