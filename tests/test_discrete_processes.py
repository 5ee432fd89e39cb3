"""Forward processes: closed-form transitions against the matrix exponential of the generator."""

import pytest
import torch

from deepatlas.discrete.processes import Absorbing, Uniform


@pytest.mark.parametrize("proc", [Absorbing(5), Uniform(5)], ids=lambda p: p.name)
@pytest.mark.parametrize("d", [0.0, 0.3, 2.0, -0.7])
def test_transition_is_matrix_exponential(proc, d):
    Q = proc.generator().double()
    assert torch.allclose(Q.sum(1), torch.zeros(len(Q), dtype=torch.float64))
    closed = proc.transition(torch.tensor(d, dtype=torch.float64))
    assert torch.allclose(closed, torch.linalg.matrix_exp(d * Q), atol=1e-12)


@pytest.mark.parametrize("proc", [Absorbing(4), Uniform(4)], ids=lambda p: p.name)
def test_transitions_compose_and_invert(proc):
    a, b = torch.tensor(0.4, dtype=torch.float64), torch.tensor(1.1, dtype=torch.float64)
    assert torch.allclose(proc.transition(a) @ proc.transition(b), proc.transition(a + b), atol=1e-12)
    assert torch.allclose(proc.transition(a) @ proc.transition(-a), torch.eye(proc.n_states, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("proc", [Absorbing(4), Uniform(4)], ids=lambda p: p.name)
def test_sampled_corruption_matches_marginal(proc):
    torch.manual_seed(0)
    n = 40000
    x0 = torch.full((n, 1), 2)
    t = torch.full((n,), 0.6)
    xt = proc.sample(x0, t)
    freq = torch.bincount(xt[:, 0], minlength=proc.n_states).double() / n
    expect = proc.marginal(x0[:1], t[:1])[0, 0].double()
    assert torch.allclose(freq, expect, atol=0.01), (freq, expect)
    assert torch.isclose(proc.alpha(t[:1]), torch.exp(-proc.sigma_bar(t[:1]))).all()
