"""Frechet distance between Gaussians fitted to features (Heusel et al. 2017):
    FID = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)),
here on the features of our in-domain classifier (eval/feature_classifier.py), so values are comparable within
deepatlas for one dataset and sample count, not with Inception-based FIDs in papers."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from deepatlas.eval.feature_classifier import accuracy, feature_net


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):  # tiny imaginary parts from round-off
        covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def gaussian_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    f = features.double().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


@torch.no_grad()
def features(net, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.features(c.clamp(-1, 1)) for c in images.split(512)])


def _fid(net, samples: torch.Tensor, reference: torch.Tensor) -> float:
    return frechet_distance(*gaussian_stats(features(net, samples)), *gaussian_stats(features(net, reference)))


def fid(samples: torch.Tensor, dataset, reference: torch.Tensor | None = None) -> float:
    """FID of `samples` (N, C, H, W) in [-1, 1] against `reference` (default: the dataset's test split)."""
    return _fid(feature_net(dataset), samples, dataset.test["x"] if reference is None else reference)


def fid_against_test(samples: torch.Tensor, dataset) -> dict[str, float]:
    net = feature_net(dataset)
    ref = dataset.test["x"]
    value = _fid(net, samples, ref)
    return {"fid": value, "fid_n_samples": len(samples), "fid_n_reference": len(ref),
            "feature_classifier_test_acc": accuracy(net, ref, dataset.test["y"])}
