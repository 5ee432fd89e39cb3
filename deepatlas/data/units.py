"""Samples back in the units of the data files: the inverse of each loader's standardisation.

Image loaders store x = 2 p / (levels - 1) - 1 in [-1, 1] for raw pixel values p in 0 .. levels - 1
(digits: 17 levels, p = 0..16; Fashion-MNIST: 256 levels, p = 0..255), so p = (x + 1) (levels - 1) / 2.
A loader that does not say `levels` is taken to hold intensities in [0, 1]: p = (x + 1) / 2. Pixels are
clamped to their range and kept as float32 (a sample lies between levels); binary data stays {0, 1}.
Vectors (toy2d, ...) are not standardised: they are written as they are. Text is token ids plus the
decoded strings.
"""

from __future__ import annotations

import numpy as np
import torch


def pixel_range(info) -> float:
    """The largest raw pixel value of an image dataset (1 when the loader gives no `levels`)."""
    if info.extra.get("binary"):
        return 1.0
    return float(info.extra.get("levels", 2) - 1)


def to_pixels(x: torch.Tensor, info) -> torch.Tensor:
    """Images in the training scale ([-1, 1], or {0, 1} binary) -> raw pixel values in [0, pixel_range]."""
    x = x.detach().float().cpu()
    if info.extra.get("binary"):
        return x
    top = pixel_range(info)
    return ((x + 1) * (top / 2)).clamp(0, top)


def from_pixels(p: torch.Tensor, info) -> torch.Tensor:
    """Raw pixel values -> the training scale: the loaders' map, for checking the inverse."""
    if info.extra.get("binary"):
        return p.float()
    return p.float() * (2 / pixel_range(info)) - 1


def to_data_units(samples, info) -> dict[str, np.ndarray]:
    """The arrays `deepatlas sample --format npz|safetensors` writes."""
    if info.kind == "image":
        return {"pixels": to_pixels(samples, info).numpy(), "pixel_max": np.array(pixel_range(info), np.float32)}
    if info.kind == "text":
        tokens = samples.detach().cpu().to(torch.int64)
        text = [info.extra["tokenizer"].decode(row) for row in tokens]
        return {"tokens": tokens.numpy(), "text": np.array(text, dtype=np.str_)}
    return {"x": samples.detach().float().cpu().numpy()}
