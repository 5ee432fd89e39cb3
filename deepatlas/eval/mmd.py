"""Maximum mean discrepancy with a Gaussian kernel k(a, b) = exp(-|a - b|^2 / (2 h^2)) (unbiased
U-statistic): MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y). Bandwidth h: the median pairwise distance."""

from __future__ import annotations

import torch


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    x, y = x.double().flatten(1), y.double().flatten(1)
    if bandwidth is None:
        bandwidth = float(torch.cdist(x, y).median())
    k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * bandwidth ** 2))
    n, m = len(x), len(y)
    kxx = (k(x, x).sum() - n) / (n * (n - 1))
    kyy = (k(y, y).sum() - m) / (m * (m - 1))
    return float(kxx + kyy - 2 * k(x, y).mean())
