"""The margin contrastive loss: values and gradients straight from 1/2 y d^2 + 1/2 (1-y) max(0, m-d)^2,
and pair mining from labels."""

import pytest
import torch

from deepatlas.representation.margin_loss import margin_contrastive_loss, mine_pairs


def _grad(z1, z2, same, **kw):
    z1 = z1.clone().requires_grad_(True)
    margin_contrastive_loss(z1, z2, torch.tensor([same]), **kw).backward()
    return z1.grad[0]


def test_values_match_formula():
    z1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    z2 = torch.tensor([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]], dtype=torch.float64)  # d = 5, 0.5, 5
    same = torch.tensor([1.0, 0.0, 0.0])
    # (1/2*25 + 1/2*(1-0.5)^2 + 0) / 3
    expect = (12.5 + 0.125 + 0.0) / 3
    assert margin_contrastive_loss(z1, z2, same, margin=1.0).item() == pytest.approx(expect, abs=1e-12)


def test_gradients_point_as_the_formula_says():
    m = 2.0
    z2 = torch.zeros(1, 3, dtype=torch.float64)
    for d in (0.5, 1.5, 3.0):  # below and above the margin
        u = torch.tensor([1.0, 2.0, -2.0], dtype=torch.float64) / 3
        z1 = (d * u)[None]
        step = -_grad(z1, z2, 1.0, margin=m)  # gradient descent direction
        # similar pair: always pulled towards z2, with force d (dL/dz1 = z1 - z2)
        assert torch.allclose(step, -(z1 - z2)[0])
        step = -_grad(z1, z2, 0.0, margin=m)
        if d < m:  # dissimilar, inside the margin: pushed away from z2 with force (m - d)
            assert torch.allclose(step, (m - d) * u)
            assert step @ u > 0
        else:  # dissimilar, beyond the margin: no force at all
            assert torch.count_nonzero(step) == 0


def test_variants_pos_margin_and_plain_hinge():
    z2 = torch.zeros(1, 2, dtype=torch.float64)
    inside = torch.tensor([[0.3, 0.0]], dtype=torch.float64)
    # a similar pair inside the positive margin feels nothing
    assert torch.count_nonzero(_grad(inside, z2, 1.0, pos_margin=0.5)) == 0
    # plain hinge: the force on a dissimilar pair inside the margin is constant (1/2), not (m - d)
    g1 = _grad(inside, z2, 0.0, margin=1.0, squared=False)
    g2 = _grad(2 * inside, z2, 0.0, margin=1.0, squared=False)
    assert torch.allclose(g1, g2) and torch.allclose(g1, torch.tensor([-0.5, 0.0], dtype=torch.float64))


def test_zero_distance_similar_pair_has_zero_gradient():
    z = torch.randn(1, 4)
    g = _grad(z, z.clone(), 1.0)
    assert torch.isfinite(g).all() and torch.count_nonzero(g) == 0


def test_mine_pairs_from_labels():
    torch.manual_seed(0)
    y = torch.tensor([0, 1, 0, 2, 1, 0])
    i, j, same = mine_pairs(y, neg_per_pos=2.0)
    assert torch.equal(same.bool(), y[i] == y[j])  # labels agree with the classes
    assert int(same.sum()) == 4  # (0,2) (0,5) (2,5) (1,4): every similar pair i<j
    assert int((1 - same).sum()) == 8
    assert (i < j).all()
    pairs = set(zip(i.tolist(), j.tolist()))
    assert len(pairs) == len(i)  # no pair twice


def test_hard_mining_picks_the_closest_dissimilar_pairs():
    y = torch.tensor([0, 1, 2, 3])
    z = torch.tensor([[0.0], [0.1], [5.0], [9.0]])
    i, j, same = mine_pairs(torch.cat([y, y[:1]]), neg_per_pos=1.0, z=torch.cat([z, z[:1]]), hard=True)
    neg = [(a, b) for a, b, s in zip(i.tolist(), j.tolist(), same.tolist()) if s == 0]
    assert neg == [(1, 4)] or neg == [(0, 1)]  # distance 0.1: the closest dissimilar pair
