"""GAN as one method: a generator G(z) and a discriminator / critic D(x) trained in alternation, with
`--model-loss` minimax | non-saturating | wgan-gp (equations in gan_losses.py).

Networks: an MLP pair for vectors (toy2d), DCGAN convolutional nets for images (deepatlas.nn.dcgan),
initialised as DCGAN does (deepatlas.nn.init: N(0, 0.02) weights, batch-norm gamma N(1, 0.02), beta 0).
Two optimizer groups, `disc` and `gen`; each training step runs `n_critic` discriminator updates, each
on a fresh real batch and fresh z (Gulrajani et al. 2017, Algorithm 1: the trainer hands over n_critic
batches through `batches_per_step`), then one generator update, through the train_phases hook.
The default objective is WGAN-GP: in bench/RESULTS.md it is the one that covered all 8 gaussians, where
the non-saturating GAN collapsed to one mode. The default optimiser is that paper's: Adam, lr 1e-4,
betas (0, 0.9), no weight decay; DCGAN's own (lr 2e-4, beta1 0.5) is `--train-lr 2e-4 --train-beta1 0.5
--train-beta2 0.999`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deepatlas import seeded
from deepatlas.config import option
from deepatlas.data.base import IMAGE_DATASETS
from deepatlas.generative.gan_losses import LOSSES, discriminator_loss, generator_loss, gradient_penalty
from deepatlas.generative.pictures import fid_or_none, save_samples
from deepatlas.method import Method
from deepatlas.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from deepatlas.nn.mlp import mlp
from deepatlas.nn.init import dcgan_init
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type


@register_method("gan", "generative", "GAN: minimax / non-saturating / WGAN-GP losses; MLP (toy2d) or DCGAN (images)")
class GAN(Method):
    datasets = (*IMAGE_DATASETS, "toy2d")
    @dataclass
    class Config:
        loss: str = option("wgan-gp", "objective: minimax | non-saturating | wgan-gp", choices=LOSSES)
        latent: int = option(0, "latent dimension (0: 8 for vectors, 64 for images)", low=0)
        width: int = option(0, "hidden width (0: 128 for the MLPs, 64 DCGAN channels)", low=0)
        depth: int = option(3, "hidden layers of the MLPs (vectors)", low=1)
        n_critic: int = option(0, "discriminator updates per generator update (0: 5 for wgan-gp, else 1)", low=0)
        gp_weight: float = option(10.0, "WGAN-GP gradient-penalty weight lambda", low=0.0)

    # WGAN-GP's paper: Adam lr 1e-4, betas (0, 0.9); 5 critic steps (Config.n_critic's default for wgan-gp)
    defaults = {"data": {"name": "toy2d", "variant": "gaussians8"},
                "train": {"lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "weight_decay": 0.0, "grad_clip": 0.0, "warmup": 0,
                          "batch_size": 256, "steps": 3000, "ema_decay": 0.0}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.image = info.kind == "image"
        self.latent = cfg.latent or (64 if self.image else 8)
        if self.image:
            w = cfg.width or 64
            self.G = DCGANGenerator(self.latent, info.shape, w)
            self.D = DCGANDiscriminator(info.shape, w, norm=cfg.loss != "wgan-gp")
            dcgan_init(self.G), dcgan_init(self.D)
        else:
            w, d = cfg.width or 128, math.prod(info.shape)
            self.G = mlp(self.latent, d, w, cfg.depth)
            self.D = nn.Sequential(mlp(d, 1, w, cfg.depth, act=lambda: nn.LeakyReLU(0.2)), nn.Flatten(0))

    # data in [-1, 1] (binary data mapped from {0, 1})
    def _real(self, batch) -> torch.Tensor:
        x = batch["x"].float()
        return x * 2 - 1 if self.info.extra.get("binary") else x

    def fake(self, n: int) -> torch.Tensor:
        """G(z) for training, z from the global RNG, with gradients, in the [-1, 1] training scale."""
        return self.G(torch.randn(n, self.latent, device=self.device))

    def optim_groups(self):
        return {"disc": list(self.D.parameters()), "gen": list(self.G.parameters())}

    def d_loss(self, real: torch.Tensor) -> dict:
        with torch.no_grad():
            fake = self.fake(len(real))
        d_real, d_fake = self.D(real), self.D(fake)
        loss = discriminator_loss(self.cfg.loss, d_real, d_fake)
        out = {"d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}
        if self.cfg.loss == "wgan-gp":
            gp = gradient_penalty(self.D, real, fake)
            loss = loss + self.cfg.gp_weight * gp
            out["gp"] = gp.detach()
        return {"loss": loss, **out}

    def g_loss(self, n: int) -> dict:
        return {"loss": generator_loss(self.cfg.loss, self.D(self.fake(n)))}

    @property
    def n_critic(self) -> int:
        return self.cfg.n_critic or (5 if self.cfg.loss == "wgan-gp" else 1)

    def batches_per_step(self) -> int:
        return self.n_critic

    def train_phases(self, batch):
        """n_critic critic updates, the k-th on the k-th of the n_critic batches the trainer handed over,
        then one generator update with as many samples as one batch. (A batch of fewer rows than n_critic,
        from a caller other than the trainer, is reused whole by every critic step.)"""
        real = self._real(batch)
        k = self.n_critic
        reals = real.tensor_split(k) if len(real) >= k else (real,) * k
        for r in reals:
            yield "disc", lambda r=r: self.d_loss(r)
        yield "gen", lambda: self.g_loss(len(reals[0]))

    def loss(self, batch):
        """Both losses for logging (no parameter update); training goes through train_phases."""
        real = self._real(batch)
        return {"loss": self.g_loss(len(real))["loss"], "d_loss": self.d_loss(real)["loss"]}

    @dataclass
    class SampleConfig:
        """A GAN draws z ~ N(0, I) and maps it: it has no sampling options."""

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, opts=None) -> torch.Tensor:
        check_type(opts, self.SampleConfig)
        self.eval()
        out = self.G(seeded.randn((n, self.latent), generator, self.device))
        if self.info.extra.get("binary"):
            out = (out + 1) / 2
        return out

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        x = self.sample(64 if self.image else 2000, torch.Generator().manual_seed(0))
        return [save_samples(x, self.info, Path(folder) / f"step-{step:08d}.png", title=f"step {step}")]

    def evaluate(self, dataset, n: int, generator: torch.Generator | None = None, opts=None, folder=None) -> dict:
        x = self.sample(n, generator, opts)
        if dataset.info.extra.get("variant") == "gaussians8":
            from deepatlas.data.toy2d import gaussians8_centers
            from deepatlas.generative.modes import count_modes

            return {"n": n, **count_modes(x, gaussians8_centers(), std=0.1)}
        if self.image:
            return {"n": n, **fid_or_none(x, dataset)}
        return {"n": n}
