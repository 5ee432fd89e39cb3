"""Mode coverage on a mixture of well-separated Gaussians (the 8-gaussians toy).

A sample is "high quality" when it lies within `k_std` standard deviations of its nearest centre; a
mode is covered when at least `min_fraction` of all samples are high-quality samples of that mode
(with the usual 2,500 samples and 8 modes, 1% is 25 samples, a tenth of a fair share).
"""

from __future__ import annotations

import torch


def count_modes(samples: torch.Tensor, centers: torch.Tensor, std: float, k_std: float = 3.0,
                min_fraction: float = 0.01) -> dict[str, float]:
    d = torch.cdist(samples.float(), centers.float())  # (N, K)
    dist, nearest = d.min(dim=1)
    good = dist <= k_std * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    covered = counts >= max(1.0, min_fraction * len(samples))
    return {"modes": int(covered.sum()), "of_modes": len(centers),
            "high_quality": float(good.float().mean()) if len(samples) else 0.0}
