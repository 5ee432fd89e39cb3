"""FID, KID and the feature network behind them: closed forms, enumeration, invariances, the cache."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

import deepatlas.eval.fid as fid_module
from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.eval.feature_classifier import accuracy, cache_folder, feature_net, floor_pool
from deepatlas.eval.fid import features, frechet_distance, gaussian_stats
from deepatlas.eval.kid import cubic_kernel, kid


def brute_force_kid(x, y):
    """The unbiased MMD^2 written as the double sums, one kernel value at a time."""
    d = x.shape[1]
    k = lambda a, b: (float(a @ b) / d + 1) ** 3
    n, m = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return kxx + kyy - 2 * kxy


def test_kid_matches_the_double_sums():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(7, 4, generator=g, dtype=torch.float64) + 0.5
    assert kid(x, y) == pytest.approx(brute_force_kid(x, y), rel=1e-12)
    assert kid(x, y, y_term=None) == pytest.approx(kid(x, y, y_term=fid_module.mean_offdiagonal(y)), rel=1e-12)


def test_kid_is_unbiased_by_enumeration():
    """X ~ p and Y ~ q on three points: the expectation of KID over every sample (n = 2, m = 3), weighted
    by its probability, equals the population MMD^2 = p'Kp + q'Kq - 2 p'Kq exactly."""
    pts = torch.tensor([[0.0, 1.0], [1.5, -0.5], [-1.0, 2.0]], dtype=torch.float64)
    p, q = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64)
    K = cubic_kernel(pts, pts)
    population = float(p @ K @ p + q @ K @ q - 2 * p @ K @ q)
    expectation = 0.0
    for ix in itertools.product(range(3), repeat=2):
        for iy in itertools.product(range(3), repeat=3):
            prob = float(p[list(ix)].prod() * q[list(iy)].prod())
            expectation += prob * kid(pts[list(ix)], pts[list(iy)])
    assert expectation == pytest.approx(population, rel=1e-10)
    assert population > 0.1  # the check has something to find


def test_kid_of_one_distribution_averages_to_zero():
    values = []
    for seed in range(200):
        g = torch.Generator().manual_seed(seed)
        values.append(kid(torch.randn(20, 4, generator=g), torch.randn(30, 4, generator=g)))
    v = torch.tensor(values)
    assert abs(float(v.mean())) < 3 * float(v.std()) / len(v) ** 0.5
    assert (v < 0).any()  # unbiased, so single estimates fall below 0
    shifted = [kid(torch.randn(20, 4, generator=torch.Generator().manual_seed(s)) + 0.5,
                   torch.randn(30, 4, generator=torch.Generator().manual_seed(1000 + s))) for s in range(20)]
    assert np.mean(shifted) > float(v.mean()) + 10 * float(v.std()) / len(v) ** 0.5


def test_kid_is_invariant_to_the_order_of_samples_and_symmetric():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(9, 5, generator=g), torch.randn(11, 5, generator=g)
    value = kid(x, y)
    assert kid(x[torch.randperm(9, generator=g)], y[torch.randperm(11, generator=g)]) == pytest.approx(value, rel=1e-12)
    assert kid(y, x) == pytest.approx(value, rel=1e-12)


def test_frechet_distance_closed_form_for_correlated_gaussians():
    """N(mu1, S) against N(mu2, c^2 S): (S (c^2 S))^(1/2) = c S, so FID = |mu1 - mu2|^2 + (1 - c)^2 Tr S,
    for any (non-diagonal) S; and FID is unchanged by an orthogonal change of basis."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    S = a @ a.T + 0.1 * np.eye(4)
    mu1, mu2, c = rng.normal(size=4), rng.normal(size=4), 1.7
    expected = ((mu1 - mu2) ** 2).sum() + (1 - c) ** 2 * np.trace(S)
    assert frechet_distance(mu1, S, mu2, c ** 2 * S) == pytest.approx(expected, rel=1e-9)
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert frechet_distance(Q @ mu1, Q @ S @ Q.T, Q @ mu2, c ** 2 * Q @ S @ Q.T) == pytest.approx(expected, rel=1e-9)


def test_fid_of_gaussian_samples_approaches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    L = torch.tensor([[1.0, 0.0], [0.8, 0.6]], dtype=torch.float64)
    x = torch.randn(200000, 2, generator=g, dtype=torch.float64) @ L.T
    y = 2.0 * torch.randn(200000, 2, generator=g, dtype=torch.float64) @ L.T + torch.tensor([1.0, 0.0], dtype=torch.float64)
    expected = 1.0 + (1 - 2) ** 2 * float((L @ L.T).trace())
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(y)) == pytest.approx(expected, abs=0.1)  # sampling error ~0.03


@pytest.fixture
def digits_net(tmp_path, monkeypatch):
    """A few-step feature network in a fresh cache (the real one: 600 steps)."""
    monkeypatch.setenv("DEEPATLAS_CACHE", str(tmp_path))
    data = load_dataset(DataConfig(name="digits"))
    return data, feature_net(data, steps=20)


def test_feature_cache_round_trip_and_key(digits_net, tmp_path, monkeypatch):
    data, net = digits_net
    folder = cache_folder(data, net, 0)
    assert folder.parent == tmp_path and "digits-1x8x8-cnn2-w32-f128-seed0-holdout359" in folder.name
    assert (folder / "info.json").exists() and list(folder.glob("checkpoints/*/model.safetensors"))
    import deepatlas.train.trainer

    monkeypatch.setattr(deepatlas.train.trainer, "fit", lambda *a, **k: pytest.fail("the cache was not used"))
    again = feature_net(data, steps=20)
    for (k, v), (k2, v2) in zip(net.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    monkeypatch.undo()
    monkeypatch.setenv("DEEPATLAS_CACHE", str(tmp_path))
    other = feature_net(data, steps=20, seed=1)  # another seed: another folder, other weights
    assert cache_folder(data, other, 1) != folder
    assert not torch.equal(other.head.weight, net.head.weight)


def test_features_are_deterministic_and_per_image(digits_net):
    data, net = digits_net
    x = data.test["x"][:64]
    f = features(net, x)
    assert f.shape == (64, 128)
    assert torch.equal(f, features(net, x))
    assert torch.allclose(features(net, x[5:6]), f[5:6], atol=1e-5)  # eval mode: no batch statistics
    assert 0.3 < accuracy(net, data.test["x"], data.test["y"])  # 20 steps already beat chance (0.1)


def test_floor_is_fid_of_the_held_out_train_images(digits_net, monkeypatch):
    data, net = digits_net
    monkeypatch.setattr(fid_module, "feature_net", lambda d: net)
    monkeypatch.setattr(fid_module, "_REFERENCES", {})
    n = 100
    idx = floor_pool(data)[1][:n]
    real = fid_module.fid_against_test(data.train.get(idx)["x"], data)
    assert real["fid"] == pytest.approx(real["fid_real"]) and real["kid"] == pytest.approx(real["kid_real"])
    assert real["n_real"] == n == real["fid_n_samples"] and real["fid_n_reference"] == len(data.test)
    noisy = fid_module.fid_against_test(data.train.get(idx)["x"] + 0.5 * torch.randn(n, 1, 8, 8), data)
    assert noisy["fid"] > real["fid_real"] and noisy["kid"] > real["kid_real"]
    assert noisy["fid_real"] == real["fid_real"]  # one floor per n


@pytest.mark.slow
@pytest.mark.parametrize("name,threshold", [("digits", 0.98), ("fashion-mnist", 0.90)])
def test_feature_network_accuracy(name, threshold, tmp_path, monkeypatch):
    if name == "fashion-mnist" and not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("Fashion-MNIST IDX files not installed (Debian package dataset-fashion-mnist)")
    monkeypatch.setenv("DEEPATLAS_CACHE", str(tmp_path))
    data = load_dataset(DataConfig(name=name))
    net = feature_net(data)
    assert accuracy(net, data.test["x"], data.test["y"]) >= threshold


def test_the_feature_network_never_trains_on_the_floor_images(tmp_path, monkeypatch):
    """The floor is real images the network has not seen: fit gets the train split less the pool."""
    import deepatlas.train.trainer

    monkeypatch.setenv("DEEPATLAS_CACHE", str(tmp_path))
    data = load_dataset(DataConfig(name="digits"))
    learn, pool = floor_pool(data)
    assert len(pool) == len(data.test) == 359 and len(learn) + len(pool) == len(data.train)
    assert not set(learn.tolist()) & set(pool.tolist())
    seen = {}
    real_fit = deepatlas.train.trainer.fit

    def recording_fit(net, dataset, *a, **k):
        seen["x"] = dataset.train["x"]
        return real_fit(net, dataset, *a, **k)

    monkeypatch.setattr(deepatlas.train.trainer, "fit", recording_fit)
    feature_net(data, steps=2)
    trained_on = {tuple(x.flatten().tolist()) for x in seen["x"]}
    held_out = [tuple(x.flatten().tolist()) for x in data.train.get(pool)["x"]]
    assert len(seen["x"]) == len(learn)
    assert sum(x in trained_on for x in held_out) <= 3  # digits has a few exact duplicate images, no more


def test_floor_n_is_capped_at_the_pool(digits_net, monkeypatch):
    data, net = digits_net
    monkeypatch.setattr(fid_module, "feature_net", lambda d: net)
    monkeypatch.setattr(fid_module, "_REFERENCES", {})
    assert fid_module.reference(data).floor(5000)["n_real"] == len(floor_pool(data)[1])


def test_more_samples_than_the_pool_are_also_compared_at_the_pool_size(digits_net, monkeypatch):
    data, net = digits_net
    monkeypatch.setattr(fid_module, "feature_net", lambda d: net)
    monkeypatch.setattr(fid_module, "_REFERENCES", {})
    x = data.train["x"][:500]
    r = fid_module.fid_against_test(x, data)
    first = fid_module.fid_against_test(x[: r["n_real"]], data)
    assert r["n_real"] == 359 and r["fid_at_n_real"] == pytest.approx(first["fid"]) and "fid_at_n_real" not in first
