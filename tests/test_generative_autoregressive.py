"""Autoregressive binary models: probabilities over all 2^10 vectors sum to 1; MADE's Jacobian is
strictly triangular in its order; sampling follows the model's conditionals."""

import itertools
import math

import pytest
import torch

from deepatlas.data.base import DataInfo
from deepatlas.errors import UserError
from deepatlas.generative.autoregressive.made import MADE
from deepatlas.generative.autoregressive.autoregressive_method import FVSBNMethod, MADEMethod, NADEMethod

INFO = DataInfo("vector", (10,), extra={"binary": True})
ALL = torch.tensor(list(itertools.product([0.0, 1.0], repeat=10)))  # (1024, 10)


def _randomise(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return m.eval()


def _models():
    torch.manual_seed(0)
    return {"fvsbn": FVSBNMethod(FVSBNMethod.Config(), INFO),
            "nade": NADEMethod(NADEMethod.Config(hidden=7), INFO),
            "made": MADEMethod(MADEMethod.Config(hidden=13, depth=2), INFO),
            "made-agnostic": MADEMethod(MADEMethod.Config(hidden=13, depth=2, num_masks=4, order_agnostic=True), INFO)}


@pytest.mark.parametrize("name", list(_models()))
def test_probabilities_sum_to_one_over_all_vectors(name):
    m = _randomise(_models()[name])
    with torch.no_grad():
        lp = m.log_prob(ALL).double()
    assert torch.allclose(torch.logsumexp(lp, 0), torch.zeros((), dtype=torch.float64), atol=1e-5)
    assert lp.std() > 0.5  # a random model is far from uniform, so the check has teeth


@pytest.mark.parametrize("order_agnostic", [False, True])
def test_made_jacobian_is_strictly_triangular_in_its_order(order_agnostic):
    made = MADE(10, [20, 20], params_per_dim=2, num_masks=3, order_agnostic=order_agnostic, seed=1)
    _randomise(made)
    for k in range(3):
        made.set_mask(k)
        x = torch.randn(10)
        jac = torch.autograd.functional.jacobian(lambda v: made(v[None])[0], x)  # (P, D_out, D_in)
        order = made.order
        allowed = order[:, None] > order[None, :]  # output i may depend on input j only if j comes first
        assert (jac.abs().sum(0)[~allowed] == 0).all()
        assert (jac.abs().sum(0)[allowed] > 0).float().mean() > 0.5  # and does depend on most of them
        if order_agnostic and k > 0:
            assert not torch.equal(order, torch.arange(10))


def test_made_mask_sets_are_deterministic_in_seed():
    a, b = MADE(6, [8], num_masks=3, seed=4), MADE(6, [8], num_masks=3, seed=4)
    a.set_mask(2), b.set_mask(2)
    assert torch.equal(a.layers[0].mask, b.layers[0].mask)


def test_fvsbn_conditional_is_logistic_regression():
    m = _randomise(FVSBNMethod(FVSBNMethod.Config(), INFO))
    x = ALL[333:334]
    i = 6
    expected = torch.sigmoid(m.net.bias[i] + (m.net.weight[i, :i] * x[0, :i]).sum())
    assert torch.allclose(torch.sigmoid(m.logits(x)[0, i]), expected, atol=1e-6)


def test_nade_matches_a_direct_loop():
    m = _randomise(NADEMethod(NADEMethod.Config(hidden=5), INFO))
    x = ALL[777:779]
    net = m.net
    for i in range(10):
        h = torch.sigmoid(net.c + x[:, :i] @ net.W[:, :i].T)
        assert torch.allclose(m.logits(x)[:, i], net.b[i] + h @ net.V[i], atol=1e-5)


@pytest.mark.parametrize("name", ["fvsbn", "nade", "made"])
def test_samples_follow_the_model(name):
    """Empirical frequencies of 4,000 samples over a 4-dim space match the model's probabilities."""
    info = DataInfo("vector", (4,), extra={"binary": True})
    cls = {"fvsbn": FVSBNMethod, "nade": NADEMethod, "made": MADEMethod}[name]
    torch.manual_seed(0)
    m = _randomise(cls(cls.Config(), info), seed=3)
    space = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    with torch.no_grad():
        p = m.log_prob(space).exp()
    s = m.sample(4000, torch.Generator().manual_seed(0))
    idx = (s * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(idx, minlength=16).float() / 4000
    assert (freq - p).abs().max() < 0.03


def test_made_ensemble_samples_follow_the_ensemble_it_scores():
    """With 4 mask sets evaluation scores the mixture (1/4) sum_m p_m; samples must follow that mixture,
    not mask set 0 alone (which differs from it by more than the tolerance here, so the test can tell)."""
    info = DataInfo("vector", (4,), extra={"binary": True})
    torch.manual_seed(0)
    m = _randomise(MADEMethod(MADEMethod.Config(hidden=9, num_masks=4, order_agnostic=True), info), seed=5)
    space = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    with torch.no_grad():
        p = m.log_prob(space).exp()
        m.net.set_mask(0)
        p0 = torch.sigmoid(m.net(space)[:, 0]).where(space > 0, 1 - torch.sigmoid(m.net(space)[:, 0])).prod(1)
    assert torch.allclose(p.sum(), torch.tensor(1.0), atol=1e-5) and (p - p0).abs().max() > 0.08
    s = m.sample(6000, torch.Generator().manual_seed(0))
    idx = (s * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(idx, minlength=16).float() / 6000
    assert (freq - p).abs().max() < 0.03


@pytest.mark.parametrize("name", list(_models()))
def test_float64_model_scores_and_samples_in_float64(name):
    m = _randomise(_models()[name]).double()
    lp = m.log_prob(ALL[:5])
    assert lp.dtype == torch.float64
    assert torch.allclose(lp, _randomise(_models()[name]).log_prob(ALL[:5]).double(), atol=1e-4)
    assert m.sample(3, torch.Generator().manual_seed(0)).dtype == torch.float64


def test_autoregressive_models_refuse_grey_data():
    with pytest.raises(UserError, match="binarize"):
        NADEMethod(NADEMethod.Config(), DataInfo("image", (1, 8, 8), 10, {"binary": False}))


def test_made_learns_binarised_digits_better_than_uniform():
    import tempfile

    from deepatlas.data.base import DataConfig
    from deepatlas.data.digits import load
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    data = load(DataConfig(name="digits", binarize=True))
    torch.manual_seed(0)
    m = MADEMethod(MADEMethod.Config(hidden=128), data.info)
    with tempfile.TemporaryDirectory() as d:
        fit(m, data, TrainConfig(steps=200, batch_size=100, lr=3e-3, warmup=10, ema_decay=0, ckpt_every=10_000), d,
            progress=False)
    nll = m.evaluate(data, 400)["nll_nats"]
    assert nll < 64 * math.log(2) * 0.6, nll  # well below the 44.4 nats of a uniform model
