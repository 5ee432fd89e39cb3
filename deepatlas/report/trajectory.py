"""A denoising-trajectory picture: one row per sample, one column per sampler step (the denoised
estimate D(x; sigma) at that step), from pure noise on the left to the sample on the right."""

from __future__ import annotations

from pathlib import Path

import torch

from deepatlas.report.grid import save_grid


def save_trajectory(frames: list[torch.Tensor], path: str | Path, columns: int = 12) -> Path:
    """frames: per step, (k, C, H, W) denoised estimates; keeps `columns` evenly spaced steps."""
    if len(frames) > columns:
        keep = torch.linspace(0, len(frames) - 1, columns).round().long().tolist()
        frames = [frames[i] for i in keep]
    stacked = torch.stack(frames, 1)  # (k, steps, C, H, W)
    k, steps = stacked.shape[:2]
    return save_grid(stacked.reshape(k * steps, *stacked.shape[2:]), path, nrow=steps)
