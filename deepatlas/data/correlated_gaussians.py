"""`correlated-gaussians`: pairs x, y in R^dim with y = rho x + sqrt(1 - rho^2) eps, eps ~ N(0, I), per
dimension, so that I(X; Y) = -dim/2 log(1 - rho^2) is known (--data-variant "rho=0.5,dim=5"). The data of
the `mi` method (deepatlas/representation/mi_estimation.py)."""

from __future__ import annotations

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.errors import UserError
from deepatlas.registry import register_dataset
from deepatlas.representation.mi_bounds import correlated_gaussians, gaussian_mi


def parse_variant(variant: str) -> tuple[float, int]:
    values = {"rho": 0.5, "dim": 5}
    for part in filter(None, variant.replace(" ", "").split(",")):
        key, _, val = part.partition("=")
        if key not in values or not val:
            raise UserError(f"--data-variant '{variant}': expected e.g. 'rho=0.5,dim=5'")
        try:
            values[key] = float(val) if key == "rho" else int(val)
        except ValueError:
            raise UserError(f"--data-variant '{variant}': {key} must be a number") from None
    if not -1 < values["rho"] < 1 or values["dim"] < 1:
        raise UserError(f"--data-variant '{variant}': need -1 < rho < 1 and dim >= 1")
    return values["rho"], values["dim"]


@register_dataset("correlated-gaussians", "representation",
                  "pairs (x, y) with per-dimension correlation rho (known MI); --variant rho=0.5,dim=5",
                  fields=("variant", "size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    rho, dim = parse_variant(cfg.variant)
    g = torch.Generator().manual_seed(cfg.seed)
    xtr, ytr = correlated_gaussians(cfg.size or 50_000, dim, rho, g)
    xte, yte = correlated_gaussians(10_000, dim, rho, g)
    info = DataInfo("pairs", (dim,), 0, {"rho": rho, "dim": dim, "mi": gaussian_mi(rho, dim)})
    return Dataset("correlated-gaussians", info, TensorData(x=xtr, y=ytr), TensorData(x=xte, y=yte))
