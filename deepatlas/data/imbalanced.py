"""An imbalanced classification task, generated: where accuracy and F1 disagree.

`binary` (default): 8-D features, 5% positives; x | y=0 ~ N(0, I), x | y=1 ~ N(mu, I) with mu = 1 on the
first two coordinates and on the third a bimodal shift (+-1.5), so that the positive region is not a
half-space. The classes overlap: the Bayes posterior thresholded at 1/2 (what cross-entropy aims at)
has F1 = 0.355, the F1-optimal threshold (0.24) gives 0.451 (Monte Carlo, 400k draws).
`multiclass`: 5 classes with priors (0.6, 0.2, 0.1, 0.06, 0.04), means on a circle of radius 2.
A model that predicts the majority class is 95% (60%) accurate and has F1 = 0 (macro F1 = 0.15).
"""

from __future__ import annotations

import math

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.errors import unknown
from deepatlas.registry import register_dataset

DIM = 8
VARIANTS = ("binary", "multiclass")


def make_binary(n: int, g: torch.Generator, positive_rate: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    y = (torch.rand(n, generator=g) < positive_rate).long()
    x = torch.randn(n, DIM, generator=g)
    side = torch.randint(0, 2, (n,), generator=g) * 2.0 - 1.0
    shift = torch.zeros(n, DIM)
    shift[:, 0] = shift[:, 1] = 1.0
    shift[:, 2] = 1.5 * side
    return x + y[:, None] * shift, y


PRIORS = (0.6, 0.2, 0.1, 0.06, 0.04)


def make_multiclass(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.multinomial(torch.tensor(PRIORS), n, replacement=True, generator=g)
    angle = 2 * math.pi * y / len(PRIORS)
    x = torch.randn(n, DIM, generator=g)
    x[:, 0] += 2 * torch.cos(angle)
    x[:, 1] += 2 * torch.sin(angle)
    return x, y


@register_dataset("imbalanced", "objectives", "imbalanced 8-D classification, 20k test (--variant binary: 5% positives | "
                                              "multiclass: 5 classes, priors .6/.2/.1/.06/.04), generated",
                  fields=("variant", "size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    variant = cfg.variant or "binary"
    if variant not in VARIANTS:
        raise unknown("imbalanced variant", variant, VARIANTS)
    n = cfg.size or 20000
    g = torch.Generator().manual_seed(cfg.seed)
    make = make_binary if variant == "binary" else make_multiclass
    x, y = make(n, g)
    xt, yt = make(20000, g)  # a large fixed test split: F1 of a 5% class is noisy
    k = 2 if variant == "binary" else len(PRIORS)
    return Dataset(f"imbalanced-{variant}", DataInfo("vector", (DIM,), k, {"variant": variant}),
                   TensorData(x=x, y=y), TensorData(x=xt, y=yt))
