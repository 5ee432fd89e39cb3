"""The in-domain feature network behind our FID: a small CNN classifier trained once per dataset with
the shared trainer and cached (DEEPATLAS_CACHE, default ~/.cache/deepatlas). Features are its
128-d penultimate layer (the role Inception-v3's pool layer plays for ImageNet-scale FID)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.method import Method


def cache_dir() -> Path:
    return Path(os.environ.get("DEEPATLAS_CACHE", Path.home() / ".cache" / "deepatlas"))


class FeatureCNN(Method):
    @dataclass
    class Config:
        width: int = option(32, "channels of the first conv")

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, w = info.shape[0], cfg.width
        self.body = nn.Sequential(
            nn.Conv2d(c, w, 3, padding=1), nn.GroupNorm(8, w), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.GroupNorm(8, 2 * w), nn.SiLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.GroupNorm(8, 4 * w), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 4w) features
        self.head = nn.Linear(4 * w, info.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def loss(self, batch):
        x = batch["x"]
        x = x + 0.05 * torch.randn_like(x)  # a little noise so features do not overfit to exact pixel values
        logits = self.head(self.body(x))
        return {"loss": F.cross_entropy(logits, batch["y"]), "acc": (logits.argmax(1) == batch["y"]).float().mean()}


STEPS = {"digits": 600, "fashion-mnist": 1500}


def feature_net(dataset, progress: bool = False) -> FeatureCNN:
    """The cached feature network for `dataset` (trained on its train split on first use, ~1 min)."""
    from deepatlas.train.checkpoint import Checkpointer
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    torch.manual_seed(0)
    net = FeatureCNN(FeatureCNN.Config(), dataset.info)
    run = cache_dir() / f"fid-classifier-{dataset.name}-{'x'.join(map(str, dataset.info.shape))}"
    cfg = TrainConfig(steps=STEPS.get(dataset.name, 1000), batch_size=128, lr=2e-3, warmup=50,
                      ema_decay=0.0, ckpt_every=10**9, log_every=100, keep=1)
    saved = Checkpointer(run).load()
    if saved is None or saved.step < cfg.steps:
        with torch.enable_grad():  # callers (evaluate) often run under no_grad
            fit(net, dataset, cfg, run, progress=progress)
        saved = Checkpointer(run).load()
    net.load_state_dict(saved.weights)
    return net.eval()


@torch.no_grad()
def accuracy(net: FeatureCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    pred = torch.cat([net.head(net.features(c)).argmax(1) for c in x.split(512)])
    return float((pred == y).float().mean())
