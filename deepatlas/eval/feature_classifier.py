"""The in-domain feature network behind our FID and KID: a small CNN classifier trained once per dataset
with the shared trainer and cached (DEEPATLAS_CACHE, default ~/.cache/deepatlas). Features are its
128-d penultimate layer (the role Inception-v3's pool layer plays for ImageNet-scale FID).

Architecture (`ARCH`): two conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool) of `width` and
2*`width` channels, then the flattened map -> Linear -> ReLU = the features (B, `features`), then a linear
classifier. Keeping the spatial map (no global average pool) is what lifts Fashion-MNIST test accuracy
from 0.856 (the earlier pooled GroupNorm CNN) to above 0.90.

The network never sees the floor's images: a seeded draw of k = min(test size, train size / 4) train
images (`floor_pool`) is held out of its training, and the real-vs-real floor of eval/fid.py is drawn
from them only. (Drawn from images the network was trained on, the "floor" measured the network's own
train/test gap: on digits real train images scored FID 9.6 against the test split while a diffusion
model's samples scored 8.1.)

Cache: one folder per (dataset, image shape, architecture, seed, held-out count), e.g.
`fid-features-fashion-mnist-1x28x28-cnn2-w32-f128-seed0-holdout10000/`, holding the trainer's checkpoint (safetensors,
written atomically by train/checkpoint.py) and `info.json` (test accuracy, training seconds), also atomic.
A changed architecture or seed never reads another's weights."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.data.base import Dataset, TensorData
from deepatlas.method import Method


def cache_dir() -> Path:
    return Path(os.environ.get("DEEPATLAS_CACHE", Path.home() / ".cache" / "deepatlas"))


class FeatureClassifier(Method):
    @dataclass
    class Config:
        width: int = option(32, "channels of the first conv block (the second has twice as many)", low=1)
        features: int = option(128, "dimension of the penultimate layer (the FID/KID features)", low=1)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c, h, w = info.shape
        k = cfg.width
        self.body = nn.Sequential(
            nn.Conv2d(c, k, 3, padding=1), nn.BatchNorm2d(k), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(k, 2 * k, 3, padding=1), nn.BatchNorm2d(2 * k), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),  # (B, 2k * h/4 * w/4)
            nn.Linear(2 * k * (h // 4) * (w // 4), cfg.features), nn.ReLU())  # (B, features)
        self.head = nn.Linear(cfg.features, info.num_classes)

    @property
    def arch(self) -> str:
        return f"cnn2-w{self.cfg.width}-f{self.cfg.features}"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def loss(self, batch):
        x = batch["x"]
        x = x + 0.05 * torch.randn_like(x)  # a little noise so features do not overfit to exact pixel values
        logits = self.head(self.body(x))
        return {"loss": F.cross_entropy(logits, batch["y"]), "acc": (logits.argmax(1) == batch["y"]).float().mean()}


STEPS = {"digits": 600, "fashion-mnist": 1200}  # batch 64: ~27 epochs of digits, ~1.3 of Fashion-MNIST
SEED = 0
POOL_SEED = 0  # which train images are held out for the floor


def floor_pool(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices the feature network learns from, train indices held out for the real-vs-real floor):
    a seeded split, k = min(len(test), len(train) // 4) held out (359 digits, 10,000 Fashion-MNIST images)."""
    n = len(dataset.train)
    k = min(len(dataset.test), n // 4)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(POOL_SEED))
    return perm[k:], perm[:k]


def cache_folder(dataset, net: FeatureClassifier, seed: int) -> Path:
    shape = "x".join(map(str, dataset.info.shape))
    held_out = len(floor_pool(dataset)[1])
    return cache_dir() / f"fid-features-{dataset.name}-{shape}-{net.arch}-seed{seed}-holdout{held_out}"


def feature_net(dataset, progress: bool = False, seed: int = SEED, steps: int | None = None,
                cfg: FeatureClassifier.Config | None = None) -> FeatureClassifier:
    """The cached feature network for `dataset` (trained on first use on its train split less the floor
    pool: about 10 s for digits, 2-4 min for Fashion-MNIST on one CPU thread)."""
    from deepatlas.train.atomic import write_json_atomic
    from deepatlas.train.checkpoint import Checkpointer
    from deepatlas.train.config import TrainConfig
    from deepatlas.errors import UserError
    from deepatlas.train.trainer import fit

    if dataset.info.num_classes < 2:
        raise UserError(f"FID here uses the features of a classifier trained on the dataset's labels; '{dataset.name}' "
                        "has no 2 classes to train it on (for your own pictures: one subfolder per class)")
    torch.manual_seed(seed)
    net = FeatureClassifier(cfg or FeatureClassifier.Config(), dataset.info)
    run = cache_folder(dataset, net, seed)
    tcfg = TrainConfig(steps=steps or STEPS.get(dataset.name, 1000), batch_size=64, lr=2e-3, warmup=50,
                       lr_decay="cosine", ema_decay=0.0, ckpt_every=10**9, log_every=100, keep=1, seed=seed)
    saved = Checkpointer(run).load()
    if saved is None or saved.step < tcfg.steps:
        t0 = time.perf_counter()
        learn = floor_pool(dataset)[0]
        seen = Dataset(dataset.name, dataset.info, TensorData(**dataset.train.get(learn)), dataset.test)
        with torch.enable_grad():  # callers (evaluate) often run under no_grad
            fit(net, seen, tcfg, run, progress=progress, resume_older=True)  # a cache: nothing to lose
        seconds = time.perf_counter() - t0
        saved = Checkpointer(run).load()
        net.load_state_dict(saved.weights)
        net.eval()
        write_json_atomic(run / "info.json", {
            "dataset": dataset.name, "arch": net.arch, "seed": seed, "steps": tcfg.steps, "train_images": len(learn),
            "batch_size": tcfg.batch_size, "feature_dim": net.cfg.features, "train_seconds": round(seconds, 1),
            "threads": torch.get_num_threads(), "test_accuracy": accuracy(net, dataset.test["x"], dataset.test["y"])})
        return net
    net.load_state_dict(saved.weights)
    return net.eval()


@torch.no_grad()
def accuracy(net: FeatureClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    pred = torch.cat([net.head(net.features(c)).argmax(1) for c in x.split(512)])
    return float((pred == y).float().mean())
