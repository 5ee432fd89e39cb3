"""MI lower bounds on correlated Gaussians, whose MI is -dim/2 log(1 - rho^2).

With the optimal critic (the true log density ratio) every bound is tight up to its known
finite-sample behaviour; trained critics land below the true value by a small margin; InfoNCE
never reports more than log N."""

import math

import pytest
import torch

from deepatlas.data.base import DataConfig
from deepatlas.errors import UserError
from deepatlas.representation.mi_bounds import (correlated_gaussians, dv_bound, gaussian_log_ratio, gaussian_mi,
                                                infonce_bound, nwj_bound)
from deepatlas.data.correlated_gaussians import load, parse_variant
from deepatlas.representation.mi_estimation import MIEstimator
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit


def _optimal(rho, dim, n, batches, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {"infonce": [], "nwj": [], "dv": []}
    for _ in range(batches):
        x, y = correlated_gaussians(n, dim, rho, g)
        s = gaussian_log_ratio(x.double(), y.double(), rho)
        out["infonce"].append(float(infonce_bound(s)))
        out["nwj"].append(float(nwj_bound(s + 1)))  # NWJ's optimum is 1 + log r
        out["dv"].append(float(dv_bound(s)))
    return {k: sum(v) / len(v) for k, v in out.items()}, out


def test_gaussian_mi_closed_form():
    # Monte Carlo mean of the log density ratio on joint samples is the MI.
    x, y = correlated_gaussians(20000, 3, 0.7, torch.Generator().manual_seed(1))
    v = 1 - 0.49
    log_r = (-0.5 * math.log(v) - (y - 0.7 * x) ** 2 / (2 * v) + y ** 2 / 2).sum(-1)
    assert log_r.mean().item() == pytest.approx(gaussian_mi(0.7, 3), abs=0.02)
    assert torch.allclose(gaussian_log_ratio(x[:5], y[:5], 0.7).diagonal(), log_r[:5], atol=1e-5)


def test_optimal_critic_is_tight_when_mi_is_below_log_n():
    rho, dim = 0.5, 5
    mean, _ = _optimal(rho, dim, n=512, batches=20)
    mi = gaussian_mi(rho, dim)  # 0.719 nats, log N = 6.24
    for name, est in mean.items():
        assert est == pytest.approx(mi, abs=0.05), name


def test_infonce_saturates_at_log_n_when_mi_is_large():
    rho, dim, n = 0.9, 20, 64
    mi = gaussian_mi(rho, dim)  # 16.6 nats >> log 64 = 4.16
    mean, per_batch = _optimal(rho, dim, n=n, batches=10)
    assert max(per_batch["infonce"]) <= math.log(n) + 1e-9
    assert mean["infonce"] > math.log(n) - 0.05  # the optimal critic reaches the ceiling ...
    assert mi - mean["infonce"] > 12  # ... which is far below the truth: InfoNCE's known bias
    # NWJ stays unbiased in expectation but noisy; the DV plug-in estimate (log of a batch mean
    # of heavy-tailed e^T) is biased upwards here. Both well above log N.
    assert mean["nwj"] > math.log(n) + 5 and mean["dv"] > math.log(n) + 5


@pytest.mark.parametrize("bound", ["infonce", "nwj", "mine"])
def test_trained_critic_lands_within_bias(tmp_path, bound):
    data = load(DataConfig(name="correlated-gaussians", variant="rho=0.5,dim=5", size=20000))
    torch.manual_seed(0)
    method = MIEstimator(MIEstimator.Config(bound=bound, critic="separable", hidden=64), data.info)
    fit(method, data, TrainConfig(steps=300, batch_size=128, lr=2e-3, warmup=20, ema_decay=0, ckpt_every=10**6,
                                  log_every=10**6), tmp_path, progress=False)
    method.eval()
    res = method.evaluate(data, 5120)
    mi = gaussian_mi(0.5, 5)
    key = {"infonce": "infonce_estimate", "nwj": "nwj_estimate", "mine": "dv_mine_estimate"}[bound]
    # lower bounds: at most a little above the truth (sampling noise), and not far below after 300 steps
    assert mi - 0.2 < res[key] < mi + 0.05, res
    assert res["infonce_estimate"] <= res["log_N"]


def test_variant_parsing_errors():
    assert parse_variant("rho=0.8,dim=3") == (0.8, 3)
    assert parse_variant("") == (0.5, 5)
    with pytest.raises(UserError, match="rho=0.5"):
        parse_variant("sigma=2")
    with pytest.raises(UserError, match="-1 < rho < 1"):
        parse_variant("rho=1")


def _mine_grad_by_hand(scores, m):
    """d surrogate / d scores: 1/N on the diagonal (E_p), -e^T / (|q| m) off it (E_q[grad T e^T] / m)."""
    n = len(scores)
    off = ~torch.eye(n, dtype=torch.bool)
    g = torch.where(off, -scores.exp() / (off.sum() * m), torch.zeros_like(scores))
    return g + torch.eye(n, dtype=scores.dtype) / n


@pytest.mark.parametrize("rate", [0.1, 1.0])
def test_mine_gradient_uses_the_moving_average(rate):
    """The surrogate's gradient is E_p[grad T] - E_q[grad T e^T] / m with m the moving average
    (1 - rate) m_old + rate * batch mean of e^T, not the batch mean (unless rate = 1)."""
    from deepatlas.representation.mi_bounds import MineBound

    g = torch.Generator().manual_seed(0)
    mine = MineBound(rate).double()
    warm = torch.randn(6, 6, generator=g, dtype=torch.float64)
    mine(warm)  # first call: m = that batch's mean
    m_old = float(warm[~torch.eye(6, dtype=torch.bool)].exp().mean())
    assert math.isclose(float(mine.log_ma.exp()), m_old, rel_tol=1e-12)
    scores = (2 * torch.randn(6, 6, generator=g, dtype=torch.float64)).requires_grad_(True)
    surrogate, bound = mine(scores)
    (grad,) = torch.autograd.grad(surrogate, scores)
    batch_mean = float(scores.detach()[~torch.eye(6, dtype=torch.bool)].exp().mean())
    m = (1 - rate) * m_old + rate * batch_mean
    assert torch.allclose(grad, _mine_grad_by_hand(scores.detach(), m), atol=1e-12)
    assert torch.allclose(bound, dv_bound(scores.detach()))  # the value reported is the DV bound itself
    if rate < 1:  # the plug-in gradient (denominator: this batch's mean) differs, so the test can tell them apart
        assert not torch.allclose(grad, _mine_grad_by_hand(scores.detach(), batch_mean), atol=1e-3)


def test_mine_ma_rate_one_trains(tmp_path):
    """--model-ma-rate 1.0 (allowed by the option) used to crash with math.log(0)."""
    data = load(DataConfig(name="correlated-gaussians", variant="rho=0.5,dim=2", size=512))
    m = MIEstimator(MIEstimator.Config(bound="mine", critic="separable", hidden=16, ma_rate=1.0), data.info)
    fit(m, data, TrainConfig(steps=3, batch_size=32, log_every=1, ckpt_every=10**9), tmp_path, progress=False)
    assert torch.isfinite(m.mine.log_ma)
