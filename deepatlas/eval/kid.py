"""Kernel Inception Distance (Binkowski et al. 2018), on our in-domain features: the squared maximum mean
discrepancy between the feature distributions of X (n samples) and Y (m samples) under the cubic polynomial
kernel k(a, b) = (a.b / d + 1)^3, d the feature dimension, estimated without bias (a U-statistic):

    KID = 1/(n(n-1)) sum_{i!=j} k(x_i, x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i, y_j) - 2/(nm) sum_{i,j} k(x_i, y_j).

Unlike FID (whose plug-in covariance estimate is biased upwards, by more at small n), its expectation is
exactly MMD^2, 0 when X and Y come from one distribution, so a single estimate can be negative."""

from __future__ import annotations

import torch


def cubic_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, d), (m, d) -> (n, m): k(a, b) = (a.b / d + 1)^3."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def kernel_sum(a: torch.Tensor, b: torch.Tensor, block: int = 2048) -> float:
    """sum_{i,j} k(a_i, b_j), in row blocks so 10,000 x 10,000 never lives in memory at once."""
    return float(sum(cubic_kernel(c, b).sum() for c in a.split(block)))


def mean_offdiagonal(a: torch.Tensor) -> float:
    """1/(n(n-1)) sum_{i!=j} k(a_i, a_j)."""
    n = len(a)
    diag = float(((a * a).sum(1) / a.shape[1] + 1).pow(3).sum())
    return (kernel_sum(a, a) - diag) / (n * (n - 1))


def kid(x: torch.Tensor, y: torch.Tensor, y_term: float | None = None) -> float:
    """Unbiased MMD^2 between feature sets x (n, d) and y (m, d), n, m >= 2. `y_term`: a precomputed
    mean_offdiagonal(y), to reuse when many x are compared with one reference."""
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"KID needs at least 2 samples on each side, got {len(x)} and {len(y)}")
    x, y = x.double(), y.double()
    kyy = mean_offdiagonal(y) if y_term is None else y_term
    return mean_offdiagonal(x) + kyy - 2 * kernel_sum(x, y) / (len(x) * len(y))
