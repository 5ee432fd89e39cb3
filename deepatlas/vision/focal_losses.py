"""Focal losses: cross-entropy that stops counting the examples a detector already gets right.

RetinaNet's (Lin et al., 2017), for classes as independent sigmoids with targets y in {0, 1},
p_t = p if y = 1 else 1 - p, α_t = α if y = 1 else 1 - α:

    FL = Σ -α_t (1 - p_t)^γ ln p_t        (α = 0.25, γ = 2; γ = 0 and α = 1/2 give half the BCE)

CornerNet's penalty-reduced variant (Law & Deng, 2018; reused by CenterNet) for a heatmap target Y in
[0, 1] that is 1 only at object centres: cells near a centre are penalised less as negatives,

    -(1 - Ŷ)^α ln Ŷ  where Y = 1,     -(1 - Y)^β Ŷ^α ln(1 - Ŷ)  elsewhere      (α = 2, β = 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sum of -α_t (1 - p_t)^γ ln p_t over all entries (Lin et al., 2017); targets in {0, 1}."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    a_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (a_t * (1 - p_t) ** gamma * ce).sum()


def penalty_reduced_focal(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Sum of the CornerNet/CenterNet heatmap focal loss; target is the splatted heatmap Y."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target >= 1
    pos_loss = -((1 - p) ** alpha * torch.log(p))[pos].sum()
    neg_loss = -((1 - target) ** beta * p ** alpha * torch.log(1 - p))[~pos].sum()
    return pos_loss + neg_loss
