"""The DCGAN generator and discriminator (Radford et al. 2016) sized for 8x8 and 28x28 images.

DCGAN recipe: the generator maps a latent vector to a (ch, H/4, W/4) map and doubles it twice with
stride-2 transposed convolutions (batch norm + ReLU, tanh out); the discriminator halves it twice with
stride-2 convolutions (LeakyReLU 0.2), then one linear logit. `norm=False` drops the discriminator's
batch norm, which WGAN-GP needs (its penalty is per example).
"""

from __future__ import annotations

import torch
from torch import nn

from deepatlas.errors import UserError


def _check_size(h: int, w: int) -> None:
    if h % 4 or w % 4:
        raise UserError(f"DCGAN nets need image sides divisible by 4, got {h}x{w} (your own pictures: e.g. --data-resolution 16 or 32)")


class DCGANGenerator(nn.Module):
    def __init__(self, latent: int, shape: tuple[int, int, int], width: int = 64):
        super().__init__()
        c, h, w = shape
        _check_size(h, w)
        self.h0, self.w0, self.ch = h // 4, w // 4, 2 * width
        self.fc = nn.Sequential(nn.Linear(latent, self.ch * self.h0 * self.w0),
                                nn.BatchNorm1d(self.ch * self.h0 * self.w0), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(self.ch, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(len(z), self.ch, self.h0, self.w0)  # (B, 2w, H/4, W/4)
        return self.up(h)  # (B, C, H, W) in [-1, 1]


class DCGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int = 64, norm: bool = True):
        super().__init__()
        c, h, w = shape
        _check_size(h, w)
        bn = nn.BatchNorm2d(2 * width) if norm else nn.Identity()
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), bn, nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (B,) logits / critic values
