"""Contrastive Predictive Coding (van den Oord, Li & Vinyals 2018).

An encoder g_enc turns each step of a sequence into z_t; an autoregressive network (a GRU) summarises
z_1..z_t into a context c_t; for every k = 1..K a linear map W_k predicts z_{t+k} from c_t, scored
log-bilinearly, f_k(z, c_t) = z^T W_k c_t. Each prediction is trained by InfoNCE (infonce.py): the
positive is the true z_{t+k}, the negatives are the z_{t+k} of the other sequences in the batch at the
same step t+k (in-batch negatives, S - 1 of them for S sequences):

    L = mean_k mean_t mean_s [ -f_k(z_{s,t+k}, c_{s,t}) + log sum_u exp f_k(z_{u,t+k}, c_{s,t}) ]

Two kinds of sequence:
- images: cut into a grid of (R, Q) overlapping patches, each encoded by the convnet; each column of
  patches read top to bottom is one sequence, so the steps are the rows of patches and the model
  predicts the patches k rows below from the rows above; a batch of B images gives S = B*Q sequences;
- 1-D signals (x of length L, cut into frames of F samples): T = L/F steps, each frame encoded by an MLP.

The representation of an input is the context averaged over all its positions (`features = context`),
or the encodings z averaged (`features = patches`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepatlas.config import option
from deepatlas.data.base import IMAGE_DATASETS
from deepatlas.errors import UserError
from deepatlas.registry import register_method
from deepatlas.representation.encoder_method import EncoderMethod, EncoderOptions, image_encoder
from deepatlas.representation.cpc_loss import auto_patch, cpc_loss, patch_grid


@register_method("cpc", "representation",
                 "Contrastive Predictive Coding: GRU context predicts k steps ahead (rows of image patches, or 1-D frames)")
class CPC(EncoderMethod):
    datasets = (*IMAGE_DATASETS, "sines")
    @dataclass
    class Config(EncoderOptions):
        k_max: int = option(2, "predict 1..K steps ahead", low=1)
        patch: int = option(0, "image patch side in pixels (0: auto, 8 on 28x28 and 4 on 8x8)", low=0)
        stride: int = option(0, "image patch stride (0: auto, a 5x5 grid)", low=0)
        features: str = option("context", "representation: mean context c | mean patch/frame encoding z",
                               choices=("context", "patches"))

    def __init__(self, cfg: Config, info):
        super().__init__(cfg, info)
        if info.kind == "image":
            side = info.shape[1]
            self.patch, self.stride = cfg.patch or auto_patch(side)[0], cfg.stride or auto_patch(side)[1]
            if self.patch > side:
                raise UserError(f"--model-patch {self.patch} is larger than the {side}px images")
            steps = (side - self.patch) // self.stride + 1
            self.encoder = image_encoder(cfg, info, size=self.patch)
        elif info.kind == "signal":
            frame = info.extra["frame"]
            steps = info.shape[0] // frame
            self.frame = frame
            self.encoder = nn.Sequential(nn.Linear(frame, 2 * cfg.dim), nn.SiLU(), nn.Linear(2 * cfg.dim, cfg.dim))
        else:
            raise UserError(f"cpc needs images or 1-D signals, got {info.kind} data; use --data digits, fashion-mnist or sines")
        if cfg.k_max >= steps:
            raise UserError(f"--model-k-max {cfg.k_max} leaves no context: sequences have only {steps} steps; use at most {steps - 1}")
        self.context = nn.GRU(cfg.dim, cfg.dim, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(cfg.dim, cfg.dim, bias=False) for _ in range(cfg.k_max))

    def sequences(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> encodings z (S, T, D) of the sequences they hold (images: S = B*Q columns of patches)."""
        if self.info.kind == "image":
            p = patch_grid(x, self.patch, self.stride)  # (B, R, Q, C, p, p)
            b, r, q = p.shape[:3]
            z = self.encoder(p.reshape(b * r * q, *p.shape[3:])).reshape(b, r, q, -1)
            return z.transpose(1, 2).reshape(b * q, r, -1)  # a column read top to bottom
        frames = x.unfold(-1, self.frame, self.frame)  # (B, T, F)
        return self.encoder(frames)

    def loss(self, batch):
        z = self.sequences(batch["x"])
        c, _ = self.context(z)
        loss, acc = cpc_loss(z, c, self.predictors)
        return {"loss": loss, "acc": acc}

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
        was = self.training
        self.eval()
        out = []
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            z = self.sequences(xb)
            f = self.context(z)[0] if self.cfg.features == "context" else z
            out.append(f.reshape(len(xb), -1, f.shape[-1]).mean(1))  # average over positions of each input
        self.train(was)
        return torch.cat(out)
