"""Saving samples of any generative method: a grid PNG for images, a scatter PNG for 2-D vectors."""

from __future__ import annotations

from pathlib import Path

import torch

from deepatlas.report.grid import save_grid, save_scatter


def save_samples(x: torch.Tensor, info, path: str | Path, reference: torch.Tensor | None = None,
                 title: str = "") -> Path:
    """x: samples in the data's own scale (images in [-1, 1], or {0, 1} for binary data)."""
    if info.kind == "image":
        img = x.view(len(x), *info.shape)
        if info.extra.get("binary"):
            img = img * 2 - 1
        return save_grid(img, path)
    if x.shape[1] == 2:
        return save_scatter(x, path, reference=reference, title=title)
    # other vectors: show each as a one-row picture
    v = x.view(len(x), 1, 1, -1)
    return save_grid(v * 2 - 1 if info.extra.get("binary") else v, path)


def fid_or_none(samples: torch.Tensor, dataset) -> dict[str, float]:
    """FID (deepatlas.eval.fid: in-domain classifier features) of grey images against the test split.
    Skipped for binarised data: the cached feature network is per dataset name and trained on grey images."""
    if dataset.info.kind != "image" or dataset.info.extra.get("binary"):
        return {}
    if dataset.info.num_classes < 2:  # e.g. a flat folder of your own pictures
        return {"fid_skipped": "FID needs an in-domain classifier, which needs at least 2 classes of labelled images"}
    from deepatlas.eval.fid import fid_against_test

    with torch.enable_grad():  # the first call trains the cached feature classifier; evaluate() runs under no_grad
        return fid_against_test(samples.view(len(samples), *dataset.info.shape), dataset)
