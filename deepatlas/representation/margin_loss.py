"""The pairwise contrastive loss with a margin (Hadsell, Chopra & LeCun 2006, "DrLIM"), and pairs to feed it.

A siamese encoder G (one network, shared weights) maps both members of a pair to z1 = G(x1),
z2 = G(x2); d = ||z1 - z2||_2 and y = 1 for a similar pair, 0 for a dissimilar one:

    L(y, d) = 1/2 * y * d^2 + 1/2 * (1 - y) * max(0, m - d)^2

Similar pairs are always pulled together (dL/dd = d); dissimilar pairs are pushed apart only while
they are closer than the margin m (dL/dd = -(m - d)), and exert no force beyond it.

Variants found in other libraries (selected here by `pos_margin` and `squared`):
- pytorch-metric-learning `ContrastiveLoss`: relu(d - pos_margin)^p for positives and
  relu(neg_margin - d)^p for negatives, p = 1 by default (a non-squared hinge), no 1/2, distance
  on L2-normalised embeddings, and each part averaged over the pairs with non-zero loss only;
- a separate positive margin (pos_margin > 0) lets similar pairs rest anywhere within it;
- some code (e.g. Keras' siamese example) swaps the roles of y (y = 1 for *dissimilar*).
Here: `pos_margin = 0, squared = True` is exactly the formula above, averaged over all pairs.

Pairs are mined from labels within a batch: every similar pair (i < j, y_i = y_j) and, per similar
pair, `neg_per_pos` dissimilar ones, drawn at random or the closest ones (hard negatives).
Or, without labels (`pairs = views`): two augmented views of an image are similar, views of
different images dissimilar.
"""

from __future__ import annotations

import torch


def margin_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, same: torch.Tensor, margin: float = 1.0,
                            pos_margin: float = 0.0, squared: bool = True) -> torch.Tensor:
    """Mean over pairs of 1/2*y*h(d - pos_margin) + 1/2*(1-y)*h(margin - d), h(u) = max(0, u)^p, p = 2 if squared else 1.
    z1, z2: (P, D) embeddings of the pairs; same: (P,) 1 for similar, 0 for dissimilar."""
    d2 = (z1 - z2).pow(2).sum(-1)
    d = (d2 + 1e-12).sqrt()  # the epsilon keeps the gradient of d finite at d = 0
    p = 2 if squared else 1
    pos = d2 if (squared and pos_margin == 0) else torch.relu(d - pos_margin).pow(p)
    neg = torch.relu(margin - d).pow(p)
    y = same.to(z1.dtype)
    return (0.5 * y * pos + 0.5 * (1 - y) * neg).mean()


def mine_pairs(y: torch.Tensor, neg_per_pos: float = 1.0, z: torch.Tensor | None = None,
               hard: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs (i, j, same) from labels y (B,): all similar pairs i < j and round(neg_per_pos * #similar)
    dissimilar ones (at least one if any exist), random or, with `hard`, those closest in z (B, D)."""
    i, j = torch.triu_indices(len(y), len(y), offset=1, device=y.device)
    same = y[i] == y[j]
    pi, pj = i[same], j[same]
    ni, nj = i[~same], j[~same]
    k = min(len(ni), max(1, round(neg_per_pos * len(pi))))
    if hard and z is not None:
        pick = (z[ni] - z[nj]).detach().pow(2).sum(-1).topk(k, largest=False).indices
    else:
        pick = torch.randperm(len(ni), device=y.device)[:k]
    ni, nj = ni[pick], nj[pick]
    lab = torch.cat([torch.ones(len(pi), device=y.device), torch.zeros(len(ni), device=y.device)])
    return torch.cat([pi, ni]), torch.cat([pj, nj]), lab
