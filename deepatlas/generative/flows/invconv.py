"""Invertible 1x1 convolution (Glow): y = W x at every pixel, W a C x C matrix initialised as a random
rotation (or the identity); log-det = (pixels) * log |det W|. On vectors (B, D) it is a dense invertible
linear map."""

from __future__ import annotations

import torch
from torch import nn

from deepatlas.generative.flows.actnorm import _pixels
from deepatlas.generative.flows.base import Flow


class InvConv1x1(Flow):
    def __init__(self, channels: int, identity: bool = False):
        super().__init__()
        w = torch.eye(channels) if identity else torch.linalg.qr(torch.randn(channels, channels))[0]
        self.weight = nn.Parameter(w)

    def forward(self, x):
        y = torch.einsum("ij,bj...->bi...", self.weight, x)
        return y, torch.linalg.slogdet(self.weight)[1].expand(len(x)) * _pixels(x)

    def inverse(self, y):
        return torch.einsum("ij,bj...->bi...", torch.linalg.inv(self.weight), y)
