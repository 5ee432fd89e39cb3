"""Random views of a batch of images, written with torch ops only (no torchvision on these machines).

The defaults are SimCLR's views (Chen et al. 2020, appendix A; CIFAR-10 strength s = 0.5) as they act
on grey images; see docs/simclr.md for the paper's values and what each one becomes here.

Crop, flip and a small affine are all maps of the output grid onto the input, so each is a 2x3 matrix
A_i per image; their product goes through one `affine_grid` + `grid_sample` (bilinear, zero padding
= the background value -1 after shifting). Coordinates are the normalised [-1, 1] ones of
`affine_grid`: output pixel u reads the input at A_i [u; 1].

- random resized crop: area fraction a ~ U(a_min, 1) and aspect ratio r = w/h log-uniform in
  [1/r_max, r_max]; the box has width fraction f_w = sqrt(a r H/W) and height fraction
  f_h = sqrt(a W/(r H)) (so f_w f_h = a) and is resized back to full size: A = [[f_w, 0, t_x], [0, f_h, t_y]],
  |t_x| <= (1 - f_w)(1 - 1/W) (likewise y), so that no sample falls beyond the outer pixel centres.
  A draw whose box does not fit (f_w > 1 or f_h > 1) is redrawn, up to 10 times, then the whole image
  is kept, as torchvision's RandomResizedCrop does (which also rounds the box to whole pixels; we do not);
- flip: x -> -x with probability p_flip;
- affine: rotation by theta ~ U(-r, r) degrees and shear ~ U(-h, h) (not in SimCLR: off by default);
- brightness / contrast jitter, with probability p_jitter, in a random order, on u = (x + 1)/2 in [0, 1]:
  brightness u -> clip(f_b u), contrast u -> clip(f_c u + (1 - f_c) mean(u)), f ~ U(max(0, 1 - b), 1 + b),
  clip to [0, 1] (torchvision's ColorJitter); so an image in [-1, 1] stays in [-1, 1];
- noise: x + sigma * eps, eps ~ N(0, I) (not in SimCLR: off by default; it leaves [-1, 1]).

Every draw takes an optional torch.Generator; without one it uses torch's global RNG, which the trainer
seeds per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepatlas.config import option


@dataclass
class AugmentConfig:
    crop_area: float = option(0.08, "smallest crop area as a fraction of the image (SimCLR: 0.08; 1: no crop)",
                              low=0.01, high=1.0)
    crop_ratio: float = option(4 / 3, "largest crop aspect ratio w/h; ratios are log-uniform in [1/r, r] (SimCLR: 4/3)",
                               low=1.0, high=10.0)
    flip: float = option(0.5, "probability of a horizontal flip (SimCLR: 0.5; digits are not mirror-symmetric)",
                         low=0.0, high=1.0)
    brightness: float = option(0.4, "brightness jitter b: factor ~ U(1-b, 1+b) (SimCLR: 0.8 s, s = 0.5 on CIFAR-10; 0: off)",
                               low=0.0)
    contrast: float = option(0.4, "contrast jitter c: factor ~ U(1-c, 1+c) (SimCLR: 0.8 s; 0: off)", low=0.0)
    jitter_p: float = option(0.8, "probability of applying the brightness/contrast jitter (SimCLR: 0.8)", low=0.0, high=1.0)
    rotate: float = option(0.0, "largest rotation in degrees (not in SimCLR)", low=0.0, high=180.0)
    shear: float = option(0.0, "largest shear factor (not in SimCLR)", low=0.0, high=1.0)
    noise: float = option(0.0, "std of added Gaussian noise, images live in [-1, 1] (not in SimCLR)", low=0.0)


def _homogeneous(a: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) -> (B, 3, 3) by appending the row [0, 0, 1]."""
    last = torch.tensor([0.0, 0.0, 1.0], dtype=a.dtype, device=a.device).expand(len(a), 1, 3)
    return torch.cat([a, last], dim=1)


def _uniform(shape, low: float, high: float, device, generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, device=device, generator=generator)


def crop_box(b: int, area_min: float, ratio_max: float, h: int, w: int, device=None, generator=None,
             tries: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height fractions (f_w, f_h), each (B,), of random resized crops that fit in an h x w image."""
    area = _uniform((tries, b), area_min, 1.0, device, generator)
    log_r = _uniform((tries, b), -math.log(ratio_max), math.log(ratio_max), device, generator)
    r = log_r.exp()
    fw, fh = (area * r * h / w).sqrt(), (area * w / (r * h)).sqrt()  # (tries, B)
    fits = (fw <= 1) & (fh <= 1)
    first = fits.float().argmax(0)  # the first draw that fits (0 if none does)
    pick = lambda f: f.gather(0, first[None]).squeeze(0)
    ok = fits.any(0)
    # fallback: torchvision keeps the whole image, clamped to the ratio range (the whole image for square ones)
    r_img = min(max(w / h, 1 / ratio_max), ratio_max)
    fw0, fh0 = min(1.0, r_img * h / w), min(1.0, w / (r_img * h))
    return torch.where(ok, pick(fw), fw0), torch.where(ok, pick(fh), fh0)


def crop_matrix(b: int, area_min: float, ratio_max: float, h: int, w: int, device=None, generator=None) -> torch.Tensor:
    fw, fh = crop_box(b, area_min, ratio_max, h, w, device, generator)
    tx = (1 - fw) * (1 - 1 / w) * _uniform(b, -1.0, 1.0, device, generator)
    ty = (1 - fh) * (1 - 1 / h) * _uniform(b, -1.0, 1.0, device, generator)
    a = torch.zeros(b, 2, 3, device=device)
    a[:, 0, 0], a[:, 1, 1], a[:, 0, 2], a[:, 1, 2] = fw, fh, tx, ty
    return a


def flip_matrix(b: int, p: float, device=None, generator=None) -> torch.Tensor:
    sign = torch.where(torch.rand(b, device=device, generator=generator) < p, -1.0, 1.0)
    a = torch.zeros(b, 2, 3, device=device)
    a[:, 0, 0], a[:, 1, 1] = sign, 1.0
    return a


def affine_matrix(b: int, max_degrees: float, max_shear: float, device=None, generator=None) -> torch.Tensor:
    theta = math.radians(max_degrees) * _uniform(b, -1.0, 1.0, device, generator)
    h = max_shear * _uniform(b, -1.0, 1.0, device, generator)
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


def brightness(u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """u (B, C, H, W) in [0, 1], f (B,): clip(f u) to [0, 1]; black stays black."""
    return (u * f[:, None, None, None]).clamp(0, 1)


def contrast(u: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """u (B, C, H, W) in [0, 1], f (B,): clip(f u + (1 - f) mean(u)) to [0, 1], the mean over each image's
    pixels (torchvision takes the mean of the greyscale image; for one channel it is the same)."""
    f = f[:, None, None, None]
    mean = u.mean(dim=(1, 2, 3), keepdim=True)
    return (f * u + (1 - f) * mean).clamp(0, 1)


def jitter(x: torch.Tensor, b: float, c: float, p: float, generator=None) -> torch.Tensor:
    """Brightness and contrast jitter of images x (B, C, H, W) in [-1, 1], applied to each image with
    probability p, the two in a random order; the result is in [-1, 1]."""
    n, dev = len(x), x.device
    fb = _uniform(n, max(0.0, 1 - b), 1 + b, dev, generator)
    fc = _uniform(n, max(0.0, 1 - c), 1 + c, dev, generator)
    apply = torch.rand(n, device=dev, generator=generator) < p
    b_first = torch.rand(n, device=dev, generator=generator) < 0.5
    u = (x + 1) / 2
    bc, cb = contrast(brightness(u, fb), fc), brightness(contrast(u, fc), fb)
    out = torch.where(b_first[:, None, None, None], bc, cb)
    return torch.where(apply[:, None, None, None], 2 * out - 1, x)


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random view of each image in x (B, C, H, W), drawn from `generator` (default: torch's global RNG)."""
    b, dev, (h, w) = len(x), x.device, x.shape[-2:]
    g = generator
    a = _homogeneous(crop_matrix(b, cfg.crop_area, cfg.crop_ratio, h, w, dev, g)) \
        @ _homogeneous(flip_matrix(b, cfg.flip, dev, g)) @ _homogeneous(affine_matrix(b, cfg.rotate, cfg.shear, dev, g))
    view = warp(x, a[:, :2])
    if cfg.jitter_p > 0 and (cfg.brightness > 0 or cfg.contrast > 0):
        view = jitter(view, cfg.brightness, cfg.contrast, cfg.jitter_p, g)
    if cfg.noise > 0:
        view = view + cfg.noise * torch.randn(view.shape, device=dev, dtype=view.dtype, generator=g)
    return view


def views(x: torch.Tensor, cfg: AugmentConfig, n_views: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, H, W) -> (V, B, C, H, W): V independent random views of every image."""
    return torch.stack([augment(x, cfg, generator) for _ in range(n_views)])
