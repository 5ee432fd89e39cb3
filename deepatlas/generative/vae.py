"""Variational auto-encoder (Kingma & Welling 2014) with a Gaussian encoder and a Bernoulli (binary
data) or Gaussian (real data) decoder; trained on the ELBO or, with `--model-k K`, on the IWAE bound L_K.

    q(z|x) = N(mu(x), diag sigma(x)^2),   z = mu + sigma * eps  (reparameterisation, eps ~ N(0, I))
    p(z) = N(0, I),   p(x|z) = Bernoulli(sigmoid(logits(z)))  or  N(m(z), diag s^2)  (s learned per dim)
    ELBO(x) = E_q log p(x|z) + log p(z) - log q(z|x) <= log p(x)
Evaluation reports the ELBO and the IWAE bound with k samples (iwae.py) as nats per example, and
bits/dim for images.
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
from deepatlas.errors import UserError
from deepatlas.generative.densities import bernoulli_log_prob, gaussian_log_prob
from deepatlas.generative.iwae import elbo, iwae_bound
from deepatlas.generative.pictures import fid_or_none, save_samples
from deepatlas.method import Method
from deepatlas.nn.mlp import mlp
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type

@register_method("vae", "generative", "VAE: Gaussian encoder, Bernoulli/Gaussian decoder; ELBO or IWAE-k training")
class VAE(Method):
    datasets = (*IMAGE_DATASETS, "toy2d")
    @dataclass
    class Config:
        latent: int = option(0, "latent dimension (0: 2 for 2-D data, 32 otherwise)", low=0)
        hidden: int = option(256, "hidden width of encoder and decoder MLPs", low=1)
        depth: int = option(2, "hidden layers of encoder and decoder", low=1)
        decoder: str = option("auto", "p(x|z): auto (bernoulli for binary data) | bernoulli | gaussian",
                              choices=("auto", "bernoulli", "gaussian"))
        k: int = option(1, "importance samples in the training bound (1: ELBO, >1: IWAE L_k)", low=1)
        eval_k: int = option(5000, "importance samples of the IWAE bound reported by `deepatlas eval`", low=1)

    defaults = {"data": {"name": "digits", "binarize": True}, "train": {"lr": 1e-3, "steps": 3000}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.dim = math.prod(info.shape)
        binary = bool(info.extra.get("binary"))
        self.decoder_kind = cfg.decoder if cfg.decoder != "auto" else ("bernoulli" if binary else "gaussian")
        if self.decoder_kind == "bernoulli" and not binary:
            raise UserError("--model-decoder bernoulli needs binary data; add --data-binarize or use gaussian")
        self.latent = cfg.latent or (2 if self.dim == 2 else 32)
        self.encoder = mlp(self.dim, 2 * self.latent, cfg.hidden, cfg.depth)
        self.decoder = mlp(self.latent, self.dim, cfg.hidden, cfg.depth)
        if self.decoder_kind == "gaussian":
            self.log_std = nn.Parameter(torch.zeros(self.dim))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.encoder(x.flatten(1)).chunk(2, dim=-1)
        return mu, log_std

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x (B, D), z (..., B, L) -> (..., B)."""
        out = self.decoder(z)
        if self.decoder_kind == "bernoulli":
            return bernoulli_log_prob(out, x)
        return gaussian_log_prob(x, out, self.log_std)

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """(k, B): log p(x|z) + log p(z) - log q(z|x) at z = mu + sigma * eps."""
        x = x.flatten(1)
        x = x if x.is_floating_point() else x.float()
        mu, log_std = self.encode(x)
        eps = torch.randn(k, *mu.shape, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(log_std) * eps  # (k, B, L)
        log_q = gaussian_log_prob(z, mu, log_std)
        log_prior = gaussian_log_prob(z)  # p(z) = N(0, I)
        return self.log_px_given_z(x, z) + log_prior - log_q

    def loss(self, batch):
        x = batch["x"]
        bound = iwae_bound(self, x, self.cfg.k) if self.cfg.k > 1 else elbo(self, x)
        loss = -bound.mean()
        return {"loss": loss, "nats": loss.detach()}

    @dataclass
    class SampleConfig:
        mean: bool | None = option(None, "show the decoder's mean rather than a draw from p(x|z) "
                                   "(unset: the mean for images, a draw for vectors)")

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, opts=None) -> torch.Tensor:
        """x = decoder(z), z ~ N(0, I); the decoder's mean, or a draw from p(x|z)."""
        opts = check_type(opts, self.SampleConfig)
        mean = self.info.kind == "image" if opts.mean is None else opts.mean
        out = self.decoder(seeded.randn((n, self.latent), generator, self.device))
        if self.decoder_kind == "bernoulli":
            p = torch.sigmoid(out)
            x = p if mean else seeded.bernoulli(p, generator)
        else:
            x = out if mean else out + torch.exp(self.log_std) * seeded.randn(out.shape, generator, out.device)
        return x.view(n, *self.info.shape)

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        x = self.sample(64 if self.info.kind == "image" else 2000, torch.Generator().manual_seed(0),
                        self.SampleConfig(mean=True))
        return [save_samples(x, self.info, Path(folder) / f"step-{step:08d}.png", title=f"step {step}")]

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator: torch.Generator | None = None, opts=None, folder=None,
                 k: int = 0, batch: int = 50, chunk: int = 500) -> dict:
        """ELBO and IWAE-k (k = cfg.eval_k) in nats on the first n test examples."""
        k = k or self.cfg.eval_k
        x = dataset.test.get(torch.arange(min(n, len(dataset.test))))["x"]
        e, iw = [], []
        for xb in x.split(batch):
            e.append(elbo(self, xb))
            iw.append(iwae_bound(self, xb, k, chunk))
        e_m, iw_m = -torch.cat(e).mean().item(), -torch.cat(iw).mean().item()
        out = {"n": len(x), "k": k, "nll_elbo_nats": e_m, f"nll_iwae{k}_nats": iw_m}
        if self.decoder_kind == "bernoulli":
            out[f"nll_iwae{k}_bits_per_dim"] = iw_m / (self.dim * math.log(2))
        else:  # a density of continuous values: nats are not comparable with discrete NLLs
            out["note"] = "gaussian decoder: continuous density of the [-1, 1] values; FID on decoder means"
            out.update(fid_or_none(self.sample(n, generator, self.SampleConfig(mean=True)), dataset))
        return out
