"""InfoNCE and its SimCLR form NT-Xent.

InfoNCE (van den Oord et al. 2018). Row i of a score matrix s (N, M) holds the scores of one anchor
against M candidates, exactly one of which (column t_i, default t_i = i) is its positive:

    L = mean_i [ -s_{i,t_i} + log sum_j exp(s_ij) ]      (cross-entropy of picking the positive)

With M = N candidates, I(X; Y) >= log N - L (see mi_bounds.py), so L >= 0 and log N - L <= log N.
When every score in a row is equal (for instance all embeddings identical) the softmax is uniform and
L = log M exactly: that is the loss of a critic that cannot tell the positive from the negatives.

NT-Xent (SimCLR, Chen et al. 2020) is InfoNCE on cosine similarities divided by a temperature tau,
with the other views in the batch as negatives. For V views of N items, z (V, N, D) is flattened to
V*N anchors; for anchor a and each of its V-1 positives p (the other views of the same item):

    l(a, p) = -s_ap + log( exp(s_ap) + sum_{n: item(n) != item(a)} exp(s_an) ),   s = cos(z_a, z_n) / tau

and the loss is the mean over all V*N*(V-1) ordered (a, p) pairs.
Convention for V > 2: the other positives of a are left out of the denominator of l(a, p) (each
positive competes only with the negatives), as pytorch-metric-learning's NTXentLoss does when given
item ids as labels. SupCon's L_out keeps them in the denominator; the two agree for V = 2, where
this is SimCLR's loss: 2N terms, each with 2N-1 candidates. With all embeddings identical every
term equals log(1 + V(N-1)), i.e. log(2N-1) for two views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepatlas.errors import UserError


def info_nce(scores: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """scores (N, M) -> mean cross-entropy of the positive column (targets, default the diagonal)."""
    if scores.ndim != 2:
        raise UserError(f"info_nce needs a (N, M) score matrix, got shape {tuple(scores.shape)}")
    if targets is None:
        if scores.shape[1] < scores.shape[0]:
            raise UserError(f"info_nce with diagonal positives needs M >= N candidates, got {tuple(scores.shape)}")
        targets = torch.arange(len(scores), device=scores.device)
    return F.cross_entropy(scores, targets)


def nt_xent(z: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """z (V, N, D): V >= 2 views of N >= 1 items -> NT-Xent loss (module docstring; mean over ordered pairs)."""
    if z.ndim != 3 or z.shape[0] < 2:
        raise UserError(f"nt_xent needs embeddings of shape (views >= 2, N, D), got {tuple(z.shape)}")
    if temperature <= 0:
        raise UserError(f"temperature must be > 0, got {temperature}")
    v, n, _ = z.shape
    z = F.normalize(z.reshape(v * n, -1), dim=-1)
    s = z @ z.T / temperature  # (VN, VN)
    item = torch.arange(n, device=z.device).repeat(v)
    same = item[:, None] == item[None, :]
    eye = torch.eye(v * n, dtype=torch.bool, device=z.device)
    neg_lse = s.masked_fill(same, float("-inf")).logsumexp(dim=1)  # (VN,); -inf when N = 1
    pos = same & ~eye
    a_idx, p_idx = pos.nonzero(as_tuple=True)
    s_ap = s[a_idx, p_idx]
    return (torch.logaddexp(s_ap, neg_lse[a_idx]) - s_ap).mean()
