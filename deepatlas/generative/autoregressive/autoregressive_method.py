"""Autoregressive density models on binary vectors as methods: FVSBN, NADE and MADE.

Each network maps x (B, D) to the logits of p(x_i = 1 | x_<i) in its order, so
    log p(x) = sum_i [x_i log sigmoid(l_i) + (1 - x_i) log sigmoid(-l_i)]  (exact, one pass)
and a sample is drawn one dimension at a time in the order (D passes). Images are flattened row by
row. Loss and evaluation: NLL in nats per example (and bits/dim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from deepatlas import seeded
from deepatlas.config import option
from deepatlas.data.base import IMAGE_DATASETS
from deepatlas.errors import UserError
from deepatlas.generative.autoregressive.fvsbn import FVSBN
from deepatlas.generative.autoregressive.made import MADE
from deepatlas.generative.autoregressive.nade import NADE
from deepatlas.generative.densities import bernoulli_log_prob
from deepatlas.generative.pictures import save_samples
from deepatlas.method import Method
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type


class AutoregressiveMethod(Method):
    datasets = IMAGE_DATASETS  # binarised (--data-binarize)
    defaults = {"data": {"name": "digits", "binarize": True}, "train": {"lr": 1e-3, "steps": 3000, "batch_size": 100}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        if not info.extra.get("binary"):
            raise UserError(f"{type(self).__name__} models binary vectors; add --data-binarize")
        self.dim = math.prod(info.shape)
        self.net = self.build(cfg)

    def build(self, cfg):
        raise NotImplementedError

    def order(self) -> torch.Tensor:
        """order[j] = position of dimension j in the autoregressive order."""
        return torch.arange(self.dim)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def dtype(self) -> torch.dtype:
        """The weights' dtype: inputs and samples take it (a float64 model scores in float64)."""
        return next(self.parameters()).dtype

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1).to(self.dtype)
        return bernoulli_log_prob(self.logits(x), x)

    def loss(self, batch):
        nll = -self.log_prob(batch["x"]).mean()
        return {"loss": nll, "nats": nll.detach()}

    @dataclass
    class SampleConfig:
        """Ancestral sampling x_i ~ Bernoulli(p(x_i | x_<i)) in the model's order: no options."""

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, opts=None) -> torch.Tensor:
        check_type(opts, self.SampleConfig)
        self.eval()
        return self.draw_bits(n, generator).view(n, *self.info.shape)

    def draw_bits(self, n: int, g: torch.Generator | None) -> torch.Tensor:
        """(n, D) binary vectors, one dimension at a time."""
        if isinstance(self.net, NADE):  # NADE has a faster sequential sampler of its own
            return self.net.sample(n, g)
        x = torch.zeros(n, self.dim, device=self.device, dtype=self.dtype)
        for i in torch.argsort(self.order()).tolist():
            p = torch.sigmoid(self.logits(x)[:, i])
            x[:, i] = seeded.bernoulli(p, g)
        return x

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        x = self.sample(64, torch.Generator().manual_seed(0))
        return [save_samples(x, self.info, Path(folder) / f"step-{step:08d}.png")]

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator: torch.Generator | None = None, opts=None, folder=None,
                 batch: int = 500) -> dict:
        self.eval()
        x = dataset.test.get(torch.arange(min(n, len(dataset.test))))["x"]
        nll = -torch.cat([self.log_prob(xb) for xb in x.split(batch)]).mean().item()
        return {"n": len(x), "nll_nats": nll, "bits_per_dim": nll / (self.dim * math.log(2))}


@register_method("fvsbn", "generative", "FVSBN: logistic autoregressive model on binary vectors; exact NLL")
class FVSBNMethod(AutoregressiveMethod):
    @dataclass
    class Config:
        pass

    def build(self, cfg):
        return FVSBN(self.dim)


@register_method("nade", "generative", "NADE: autoregressive model with a shared hidden layer; exact NLL")
class NADEMethod(AutoregressiveMethod):
    @dataclass
    class Config:
        hidden: int = option(256, "hidden units H", low=1)

    def build(self, cfg):
        return NADE(self.dim, cfg.hidden)


@register_method("made", "generative", "MADE: masked autoencoder; order/connectivity-agnostic option; exact NLL")
class MADEMethod(AutoregressiveMethod):
    @dataclass
    class Config:
        hidden: int = option(500, "hidden units per layer", low=1)
        depth: int = option(1, "hidden layers", low=1)
        num_masks: int = option(1, "orders/connectivities trained (>1: agnostic training, evaluation averages them)", low=1)
        order_agnostic: bool = option(False, "with num_masks > 1, draw a new input order for each mask too")
        mask_seed: int = option(0, "seed of the hidden-unit degrees and orders")

    def build(self, cfg):
        return MADE(self.dim, [cfg.hidden] * cfg.depth, 1, cfg.num_masks, cfg.order_agnostic, cfg.mask_seed)

    def order(self):
        return self.net.order

    def logits(self, x):
        return self.net(x)[:, 0]

    def loss(self, batch):
        if self.cfg.num_masks > 1:  # one mask set per step, drawn from the trainer's per-step seeded RNG
            self.net.set_mask(int(torch.randint(self.cfg.num_masks, ())))
        return super().loss(batch)

    def log_prob(self, x):
        if self.training or self.cfg.num_masks == 1:
            return super().log_prob(x)
        # ensemble over the mask sets: log (1/M) sum_m p_m(x)
        lps = []
        for m in range(self.cfg.num_masks):
            self.net.set_mask(m)
            lps.append(super().log_prob(x))
        self.net.set_mask(0)
        return torch.logsumexp(torch.stack(lps), 0) - math.log(self.cfg.num_masks)

    def draw_bits(self, n, g=None):
        """From the distribution evaluation scores: with M mask sets that is the mixture (1/M) sum_m p_m, so
        each sample picks its mask set m uniformly, then runs the sequential sampler in m's order."""
        if self.cfg.num_masks == 1:
            self.net.set_mask(0)
            return super().draw_bits(n, g)
        pick = torch.randint(self.cfg.num_masks, (n,), generator=g)
        x = torch.zeros(n, self.dim, device=self.device, dtype=self.dtype)
        for m in pick.unique().tolist():
            rows = torch.nonzero(pick == m)[:, 0].to(self.device)
            self.net.set_mask(m)
            x[rows] = super().draw_bits(len(rows), g)
        self.net.set_mask(0)
        return x
