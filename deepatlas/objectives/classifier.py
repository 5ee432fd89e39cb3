"""`classifier`: an MLP trained with cross-entropy or with a smooth metric as its loss.

--loss ce | smooth-f1 | smooth-acc. The smooth losses are 1 - smooth F1 and 1 - smooth accuracy of the
batch (objectives/smooth_metrics.py) at temperature --temperature; F1 is that of class 1 for two classes
and the macro F1 otherwise. Evaluation reports the discrete accuracy and F1 on the test split whatever
the loss, so the objectives can be compared on the metric that matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.method import Method
from deepatlas.objectives.smooth_metrics import accuracy, f1, smooth_accuracy, smooth_f1
from deepatlas.registry import register_method


@register_method("classifier", "objectives", "MLP classifier trained with --loss ce | smooth-f1 | smooth-acc "
                                             "(smooth surrogates of the discrete metrics)")
class Classifier(Method):
    datasets = ("imbalanced",)
    @dataclass
    class Config:
        loss: str = option("ce", "training objective: cross-entropy or 1 - a smooth metric",
                           choices=("ce", "smooth-f1", "smooth-acc"))
        temperature: float = option(1.0, "temperature of the softmax replacing argmax in smooth losses", low=1e-6)
        hidden: int = option(64, "hidden width", low=1)
        depth: int = option(2, "hidden layers", low=0)

    defaults = {"data": {"name": "imbalanced"},
                "train": {"steps": 1500, "batch_size": 512, "lr": 3e-3, "ema_decay": 0.0, "ckpt_every": 1500}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        d_in, layers = math.prod(info.shape), []
        for _ in range(cfg.depth):
            layers += [nn.Linear(d_in, cfg.hidden), nn.ReLU()]
            d_in = cfg.hidden
        self.net = nn.Sequential(nn.Flatten(), *layers, nn.Linear(d_in, info.num_classes))
        self.average = "binary" if info.num_classes == 2 else "macro"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def loss(self, batch):
        z, y = self.net(batch["x"]), batch["y"]
        if self.cfg.loss == "ce":
            loss = F.cross_entropy(z, y)
        elif self.cfg.loss == "smooth-f1":
            loss = 1 - smooth_f1(z, y, self.cfg.temperature, self.average)
        else:
            loss = 1 - smooth_accuracy(z, y, self.cfg.temperature)
        return {"loss": loss, "acc": accuracy(z.detach(), y), "f1": f1(z.detach(), y, self.average)}

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator=None, opts=None, folder=None) -> dict[str, float]:
        self.eval()
        m = min(n, len(dataset.test))
        b = dataset.test.get(torch.arange(m))
        z = self.net(b["x"])
        return {"accuracy": accuracy(z, b["y"]).item(), f"f1_{self.average}": f1(z, b["y"], self.average).item(), "n": m}
