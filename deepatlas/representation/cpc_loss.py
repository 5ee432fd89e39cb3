"""The CPC objective (van den Oord, Li & Vinyals 2018): InfoNCE on predictions k steps ahead.

For every k = 1..K a linear map W_k predicts z_{t+k} from the context c_t, scored log-bilinearly,
f_k(z, c_t) = z^T W_k c_t. The positive is the true z_{t+k}; the negatives are the z_{t+k} of the other
sequences in the batch at the same step t+k (in-batch negatives, S - 1 of them for S sequences):

    L = mean_k mean_t mean_s [ -f_k(z_{s,t+k}, c_{s,t}) + log sum_u exp f_k(z_{u,t+k}, c_{s,t}) ]

An image becomes sequences by `patch_grid`: a grid of (R, Q) overlapping patches, each column read top
to bottom one sequence, so the steps are the rows of patches.
"""

from __future__ import annotations

import torch
from torch import nn

from deepatlas.representation.infonce import info_nce


def cpc_loss(z: torch.Tensor, c: torch.Tensor, predictors: nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
    """z (S, T, D) encodings, c (S, T, H) contexts, predictors[k-1] = W_k -> (loss, accuracy of picking the
    positive), both averaged over k = 1..K and every (sequence, step) that has a step t+k."""
    s, t, _ = z.shape
    losses, accs = [], []
    for k, w in enumerate(predictors, start=1):
        pred = w(c[:, : t - k])  # (S, T-k, D): predictions of z_{t+k}
        target = z[:, k:]  # (S, T-k, D)
        scores = torch.einsum("std,utd->tsu", pred, target).reshape(-1, s)  # ((T-k)*S, S), row (t, s)
        labels = torch.arange(s, device=z.device).repeat(t - k)
        losses.append(info_nce(scores, labels))
        accs.append((scores.argmax(-1) == labels).float().mean())
    return torch.stack(losses).mean(), torch.stack(accs).mean()


def patch_grid(x: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, R, Q, C, patch, patch): the overlapping patches, row by row."""
    p = x.unfold(2, patch, stride).unfold(3, patch, stride)  # (B, C, R, Q, patch, patch)
    return p.permute(0, 2, 3, 1, 4, 5)


def auto_patch(size: int) -> tuple[int, int]:
    """Default patch and stride giving a 5x5 grid on 28x28 (8 px, stride 5) and on 8x8 (4 px, stride 1)."""
    if size >= 16:
        return 8, max(1, (size - 8) // 4)
    p = max(2, size // 2)
    return p, max(1, (size - p) // 4)
