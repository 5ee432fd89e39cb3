"""scikit-learn's 1,797 8x8 grey digits (values 0..16), scaled to [-1, 1], fixed 80/20 split."""

from __future__ import annotations

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData, binarize, split
from deepatlas.registry import register_dataset


def load_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 8.0 - 1.0  # (N, 1, 8, 8) in [-1, 1]
    return x, torch.tensor(d.target, dtype=torch.int64)


@register_dataset("digits", "data", "1,797 8x8 grey digits, 10 classes (scikit-learn, embedded); 80/20 split",
                  fields=("size", "binarize", "seed"))
def load(cfg: DataConfig) -> Dataset:
    x, y = load_arrays()
    if cfg.binarize:
        x = binarize(x, cfg.seed)
    tr, te = split(len(x), 0.2, seed=cfg.seed)
    if cfg.size:
        tr = tr[: cfg.size]
    info = DataInfo("image", tuple(x.shape[1:]), 10, {"binary": cfg.binarize, "levels": 17})
    return Dataset("digits", info, TensorData(x=x[tr], y=y[tr]), TensorData(x=x[te], y=y[te]))
