"""Pictures of samples: a grid PNG of images in [-1, 1], and a scatter PNG of 2-D points."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2, scale: int = 0) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> one uint8 picture (rows x cols of images, `pad` pixels apart).
    `scale` upsamples each pixel to scale x scale (default: so that small images are at least 64 px)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()
    n, c, h, w = x.shape
    scale = scale or max(1, 64 // max(h, w))
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    hs, ws = h * scale + pad, w * scale + pad
    canvas = torch.full((c, ncol * hs + pad, nrow * ws + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, nrow)
        img = x[i].repeat_interleave(scale, 1).repeat_interleave(scale, 2)
        canvas[:, pad + r * hs: pad + r * hs + h * scale, pad + q * ws: pad + q * ws + w * scale] = img
    arr = canvas.permute(1, 2, 0).numpy()
    return arr[..., 0] if c == 1 else arr


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(images, nrow, scale=scale)).save(path)
    return path


def save_scatter(points: torch.Tensor, path: str | Path, reference: torch.Tensor | None = None,
                 title: str = "") -> Path:
    """2-D samples (N, 2) as a scatter plot, optionally over reference data in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if reference is not None:
        ax.scatter(*reference[:, :2].T.cpu(), s=1, c="0.8", label="data")
    ax.scatter(*points[:, :2].detach().T.cpu(), s=1, c="C0", label="samples")
    ax.set_aspect("equal")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
