"""Random views of a batch of images, written with torch ops only (no torchvision on these machines).

Crop, flip and a small affine are all maps of the output grid onto the input, so each is a 2x3 matrix
A_i per image; their product goes through one `affine_grid` + `grid_sample` (bilinear, zero padding
= the background value -1 after shifting). Noise is added last. Coordinates are the normalised
[-1, 1] ones of `affine_grid`: output pixel u reads the input at A_i [u; 1].

- crop: keep a square of side s in [scale_min, 1] (fraction of the image side) at a random place
  inside the image, resized back to full size: A = [[s, 0, t_x], [0, s, t_y]],
  |t| <= (1 - s)(1 - 1/W), so that no sample falls beyond the outer pixel centres (1 - 1/W);
- flip: x -> -x with probability p_flip;
- affine: rotation by theta ~ U(-r, r) degrees and shear ~ U(-h, h);
- noise: x + sigma * eps, eps ~ N(0, I).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepatlas.config import option


@dataclass
class AugmentConfig:
    crop_scale: float = option(0.7, "smallest crop side as a fraction of the image side (1: no crop)", low=0.05, high=1.0)
    flip: float = option(0.0, "probability of a horizontal flip (0.5 suits Fashion-MNIST; digits are not mirror-symmetric)",
                         low=0.0, high=1.0)
    rotate: float = option(10.0, "largest rotation in degrees", low=0.0, high=180.0)
    shear: float = option(0.1, "largest shear factor", low=0.0, high=1.0)
    noise: float = option(0.1, "std of added Gaussian noise (images live in [-1, 1])", low=0.0)


def _homogeneous(a: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) -> (B, 3, 3) by appending the row [0, 0, 1]."""
    last = torch.tensor([0.0, 0.0, 1.0], dtype=a.dtype, device=a.device).expand(len(a), 1, 3)
    return torch.cat([a, last], dim=1)


def crop_matrix(b: int, scale_min: float, side: int, device=None) -> torch.Tensor:
    s = scale_min + (1 - scale_min) * torch.rand(b, device=device)
    t = ((1 - s) * (1 - 1 / side))[:, None] * (2 * torch.rand(b, 2, device=device) - 1)
    a = torch.zeros(b, 2, 3, device=device)
    a[:, 0, 0], a[:, 1, 1], a[:, :, 2] = s, s, t
    return a


def flip_matrix(b: int, p: float, device=None) -> torch.Tensor:
    sign = torch.where(torch.rand(b, device=device) < p, -1.0, 1.0)
    a = torch.zeros(b, 2, 3, device=device)
    a[:, 0, 0], a[:, 1, 1] = sign, 1.0
    return a


def affine_matrix(b: int, max_degrees: float, max_shear: float, device=None) -> torch.Tensor:
    theta = math.radians(max_degrees) * (2 * torch.rand(b, device=device) - 1)
    h = max_shear * (2 * torch.rand(b, device=device) - 1)
    c, s = torch.cos(theta), torch.sin(theta)
    a = torch.zeros(b, 2, 3, device=device)
    # rotation R(theta) times shear [[1, h], [0, 1]]
    a[:, 0, 0], a[:, 0, 1] = c, c * h - s
    a[:, 1, 0], a[:, 1, 1] = s, s * h + c
    return a


def warp(x: torch.Tensor, a: torch.Tensor, background: float = -1.0) -> torch.Tensor:
    """Resample (B, C, H, W) images through per-image 2x3 matrices; pixels from outside are `background`."""
    grid = F.affine_grid(a.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background


def augment(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """One random view of each image in x (B, C, H, W); uses torch's global RNG (seeded per step by the trainer)."""
    b, dev = len(x), x.device
    a = _homogeneous(crop_matrix(b, cfg.crop_scale, x.shape[-1], dev)) @ _homogeneous(flip_matrix(b, cfg.flip, dev)) \
        @ _homogeneous(affine_matrix(b, cfg.rotate, cfg.shear, dev))
    view = warp(x, a[:, :2])
    if cfg.noise > 0:
        view = view + cfg.noise * torch.randn_like(view)
    return view


def views(x: torch.Tensor, cfg: AugmentConfig, n_views: int = 2) -> torch.Tensor:
    """(B, C, H, W) -> (V, B, C, H, W): V independent random views of every image."""
    return torch.stack([augment(x, cfg) for _ in range(n_views)])
