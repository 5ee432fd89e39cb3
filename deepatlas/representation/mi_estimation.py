"""Estimating mutual information with a trained critic (the `mi` method), on data whose MI is known.

On the `correlated-gaussians` dataset (deepatlas/data/correlated_gaussians.py) I(X; Y) = -dim/2 log(1 - rho^2)
is known. The `mi` method trains a
critic by maximising one lower bound of mi_bounds.py on each batch of N pairs (N = the batch size);
`deepatlas eval` reports every bound of the trained critic on test batches beside the true value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from deepatlas.config import option
from deepatlas.errors import UserError
from deepatlas.method import Method
from deepatlas.registry import register_method
from deepatlas.representation.mi_bounds import ConcatCritic, MineBound, SeparableCritic, dv_bound, infonce_bound, nwj_bound


@register_method("mi", "representation", "MI estimation with a critic: InfoNCE, NWJ or MINE lower bound (correlated-gaussians)")
class MIEstimator(Method):
    datasets = ("correlated-gaussians",)
    defaults = {"data": {"name": "correlated-gaussians"},
                "train": {"steps": 2000, "batch_size": 128, "lr": 5e-4, "warmup": 50, "ema_decay": 0.0}}

    @dataclass
    class Config:
        bound: str = option("infonce", "bound to maximise: infonce | nwj | mine", choices=("infonce", "nwj", "mine"))
        critic: str = option("concat", "critic: concat (MLP on [x; y]) | separable (f(x).g(y))", choices=("concat", "separable"))
        hidden: int = option(128, "critic MLP width", low=4)
        ma_rate: float = option(0.01, "MINE moving-average rate of E_q[e^T]", low=1e-6, high=1.0)
        eval_batch: int = option(128, "pairs per batch N when evaluating (match the training batch size)", low=2)

    def __init__(self, cfg: Config, info):
        super().__init__(cfg, info)
        if info.kind != "pairs":
            raise UserError("the mi method needs paired data (x, y); use --data correlated-gaussians")
        d = info.shape[0]
        self.critic = ConcatCritic(d, d, cfg.hidden) if cfg.critic == "concat" else SeparableCritic(d, d, cfg.hidden)
        self.mine = MineBound(cfg.ma_rate)

    def loss(self, batch):
        scores = self.critic(batch["x"], batch["y"])
        if self.cfg.bound == "mine":
            surrogate, value = self.mine(scores)
        else:
            value = infonce_bound(scores) if self.cfg.bound == "infonce" else nwj_bound(scores)
            surrogate = value
        return {"loss": -surrogate, "mi_estimate": value.detach(), "true_mi": self.info.extra["mi"]}

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator=None, opts=None, folder=None) -> dict[str, float]:
        """Every bound of the trained critic, averaged over test batches of cfg.eval_batch pairs."""
        batch = self.cfg.eval_batch
        n = max(batch, min(n, len(dataset.test)))
        sums = {"infonce": 0.0, "nwj": 0.0, "dv_mine": 0.0}
        count = 0
        for i in range(0, n - batch + 1, batch):
            b = dataset.test.get(torch.arange(i, i + batch))
            s = self.critic(b["x"], b["y"])
            sums["infonce"] += float(infonce_bound(s))
            sums["nwj"] += float(nwj_bound(s))
            sums["dv_mine"] += float(dv_bound(s))
            count += 1
        out = {f"{k}_estimate": v / count for k, v in sums.items()}
        return {"true_mi": self.info.extra["mi"], "log_N": math.log(batch), "batch": batch, "batches": count, **out}
