"""InfoNCE / NT-Xent: exact values where all scores are equal, the log N ceiling, a brute-force
reference for the V-view convention, and agreement with pytorch-metric-learning's NTXentLoss."""

import math

import pytest
import torch
import torch.nn.functional as F

from deepatlas.errors import UserError
from deepatlas.representation.infonce import info_nce, nt_xent
from deepatlas.representation.mi_bounds import infonce_bound


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_equal_scores_give_log_n_exactly(n):
    # The setting: an (N, N) score matrix whose entries are all equal (e.g. identical embeddings,
    # scores = dot products): the softmax over candidates is uniform and the loss is log N.
    z = torch.ones(n, 16, dtype=torch.float64) * 0.3
    scores = z @ z.T
    assert info_nce(scores).item() == pytest.approx(math.log(n), abs=1e-12)
    assert infonce_bound(scores).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("v,n", [(2, 1), (2, 5), (3, 4), (4, 8)])
def test_ntxent_identical_embeddings(v, n):
    # All V*N embeddings identical: every term has 1 positive and V(N-1) negatives, all equal:
    # loss = log(1 + V(N-1)), i.e. log(2N - 1) for two views (SimCLR's 2N-1 candidates).
    z = torch.randn(1, 1, 8, dtype=torch.float64).expand(v, n, 8)
    assert nt_xent(z, 0.1).item() == pytest.approx(math.log(1 + v * (n - 1)), abs=1e-12)


def test_infonce_bound_never_exceeds_log_n():
    g = torch.Generator().manual_seed(0)
    for scale in (0.1, 10.0, 1e3):
        s = scale * torch.randn(32, 32, generator=g, dtype=torch.float64)
        s.diagonal().add_(scale * 5)  # a critic that is sure of every positive
        assert infonce_bound(s).item() <= math.log(32) + 1e-12
    assert infonce_bound(torch.randn(32, 32)).item() < math.log(32)


def _ntxent_reference(z, tau):
    """Loop over every ordered (anchor, positive) pair, straight from the definition."""
    v, n, _ = z.shape
    flat = F.normalize(z.reshape(v * n, -1), dim=-1)
    item = [i % n for i in range(v * n)]
    terms = []
    for a in range(v * n):
        for p in range(v * n):
            if p == a or item[p] != item[a]:
                continue
            s_ap = flat[a] @ flat[p] / tau
            negs = [flat[a] @ flat[k] / tau for k in range(v * n) if item[k] != item[a]]
            terms.append(-s_ap + torch.logsumexp(torch.stack([s_ap] + negs), 0))
    return torch.stack(terms).mean()


@pytest.mark.parametrize("v,n", [(2, 6), (3, 5)])
def test_ntxent_matches_definition(v, n):
    z = torch.randn(v, n, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(v))
    assert nt_xent(z, 0.3).item() == pytest.approx(_ntxent_reference(z, 0.3).item(), abs=1e-10)


def test_ntxent_two_views_is_simclr_cross_entropy():
    # SimCLR written as a (2N, 2N) cross-entropy with the self-similarity masked out.
    n, tau = 9, 0.2
    z = torch.randn(2, n, 5, dtype=torch.float64)
    f = F.normalize(z.reshape(2 * n, -1), dim=-1)
    s = (f @ f.T / tau).fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    assert nt_xent(z, tau).item() == pytest.approx(F.cross_entropy(s, target).item(), abs=1e-10)


def test_ntxent_rejects_bad_input():
    with pytest.raises(UserError, match="views >= 2"):
        nt_xent(torch.randn(1, 4, 3))
    with pytest.raises(UserError, match="temperature"):
        nt_xent(torch.randn(2, 4, 3), 0.0)


@pytest.mark.parametrize("v,n,tau", [(2, 16, 0.5), (2, 3, 0.07), (3, 8, 0.2)])
def test_ntxent_agrees_with_pytorch_metric_learning(v, n, tau):
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    z = torch.randn(v, n, 12, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    labels = torch.arange(n).repeat(v)  # item ids: the views of one item are its positives
    theirs = pml.NTXentLoss(temperature=tau)(z.reshape(v * n, -1), labels)
    assert nt_xent(z, tau).item() == pytest.approx(theirs.item(), rel=1e-9, abs=1e-9)
