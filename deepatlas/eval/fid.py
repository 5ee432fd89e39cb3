"""Frechet distance between Gaussians fitted to features (Heusel et al. 2017):
    FID = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)),
here on the features of our in-domain classifier (eval/feature_classifier.py), so values are comparable within
deepatlas for one dataset and sample count, not with Inception-based FIDs in papers.

Every FID is reported beside its real-vs-real floor at the same n: the FID of n real train images that
the feature network never saw (its held-out pool, feature_classifier.floor_pool) against the same
test-split reference; n is capped at the pool's size. FID's
covariance estimate is biased at small n, so the floor is far from 0 there; a model is judged by its
ratio to the floor. KID (eval/kid.py) is reported the same way; its floor has expectation 0."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from deepatlas.eval.feature_classifier import accuracy, feature_net, floor_pool
from deepatlas.eval.kid import kid, mean_offdiagonal


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    with warnings.catch_warnings():  # dead ReLU units make S singular; sqrtm is still right on its range
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
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


class Reference:
    """The test split's features, Gaussian statistics and KID self-term, computed once per process."""

    def __init__(self, net, dataset):
        self.net, self.dataset = net, dataset
        self.f = features(net, dataset.test["x"])  # (m, d)
        self.mu, self.sigma = gaussian_stats(self.f)
        self.kyy = mean_offdiagonal(self.f.double())
        self.acc = accuracy(net, dataset.test["x"], dataset.test["y"])
        self.pool = floor_pool(dataset)[1]  # the held-out train images the floor is drawn from
        self.floors: dict[int, dict[str, float]] = {}

    def compare(self, f: torch.Tensor) -> dict[str, float]:
        return {"fid": frechet_distance(*gaussian_stats(f), self.mu, self.sigma), "kid": kid(f, self.f, self.kyy)}

    def floor(self, n: int) -> dict[str, float]:
        """FID and KID of the first n held-out train images (at most the pool's size) against the test reference."""
        n = min(n, len(self.pool))
        if n not in self.floors:
            r = self.compare(features(self.net, self.dataset.train.get(self.pool[:n])["x"]))
            self.floors[n] = {"fid_real": r["fid"], "kid_real": r["kid"], "n_real": n}
        return self.floors[n]


_REFERENCES: dict[tuple, Reference] = {}


def reference(dataset) -> Reference:
    key = (dataset.name, tuple(dataset.info.shape), len(dataset.test))
    if key not in _REFERENCES:
        _REFERENCES[key] = Reference(feature_net(dataset), dataset)
    return _REFERENCES[key]


def fid_against_test(samples: torch.Tensor, dataset) -> dict[str, float]:
    """FID and KID of `samples` (N, C, H, W) in [-1, 1] against the test split, each beside its floor
    (fid_real, kid_real: n_real held-out train images, see the module docstring). n_real = N unless the
    pool is smaller (digits: 359); then fid_at_n_real / kid_at_n_real are the first n_real samples' values."""
    if len(samples) < 2:
        raise ValueError(f"FID/KID need at least 2 samples, got {len(samples)}")
    ref = reference(dataset)
    f = features(ref.net, samples)
    r, floor = ref.compare(f), ref.floor(len(samples))
    if floor["n_real"] < len(samples):  # more samples than held-out real images: also compare at the floor's n
        same = ref.compare(f[: floor["n_real"]])
        r.update(fid_at_n_real=same["fid"], kid_at_n_real=same["kid"])
    return {**r, **floor, "fid_n_samples": len(samples), "fid_n_reference": len(ref.f),
            "feature_dim": ref.f.shape[1], "feature_classifier_test_acc": ref.acc}
