"""Datasets: shapes, ranges, disjoint splits, the IDX format and its errors."""

import gzip
import struct

import numpy as np
import pytest
import torch

from deepatlas.data.base import DataConfig, load_dataset, split
from deepatlas.data.fashion_mnist import DEFAULT as FASHION_DEFAULT
from deepatlas.data.fashion_mnist import load_split
from deepatlas.data.idx import parse_idx
from deepatlas.errors import UserError


def _idx(arr: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def test_idx_round_trip_and_defects():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(_idx(a)), a)
    raw = _idx(a)
    with pytest.raises(UserError, match="truncated"):
        parse_idx(raw[:-1])
    with pytest.raises(UserError, match="longer than its header"):
        parse_idx(raw + b"\0")
    with pytest.raises(UserError, match="magic"):
        parse_idx(b"\x12\x34" + raw[2:])
    with pytest.raises(UserError, match="not an IDX file"):
        parse_idx(b"\0\0")


def test_fashion_mnist_from_any_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    for stem, arr in [("train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28))),
                      ("train-labels-idx1-ubyte", np.arange(5)),
                      ("t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 28, 28))),
                      ("t10k-labels-idx1-ubyte", np.arange(3))]:
        (tmp_path / (stem + ".gz")).write_bytes(gzip.compress(_idx(arr)))
    d = load_dataset(DataConfig(name="fashion-mnist", path=str(tmp_path)))
    assert d.train["x"].shape == (5, 1, 28, 28) and d.test["y"].tolist() == [0, 1, 2]
    assert d.train["x"].min() >= -1 and d.train["x"].max() <= 1
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.arange(4))))
    with pytest.raises(UserError, match="expected N images"):
        load_split(tmp_path, "test")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(UserError, match="cannot read or decompress"):
        load_split(tmp_path, "test")


@pytest.mark.skipif(not (FASHION_DEFAULT / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason=f"the real Fashion-MNIST files are not in {FASHION_DEFAULT}: apt-get install dataset-fashion-mnist (as root)")
def test_real_fashion_mnist_test_split():
    """The Debian package's files, as `make install` puts them: 10,000 test images, 1,000 of each class."""
    x, y = load_split(FASHION_DEFAULT, "test")
    assert x.shape[-2:] == (28, 28) and len(x) == len(y) == 10_000
    assert torch.bincount(y.long(), minlength=10).tolist() == [1000] * 10


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        load_dataset(DataConfig(name="fashion-mnist", path=str(tmp_path / "nowhere")))
    with pytest.raises(UserError, match="file not found.*apt-get install"):
        load_dataset(DataConfig(name="fashion-mnist", path=str(tmp_path)))


def test_digits_split_is_disjoint_and_scaled():
    d = load_dataset(DataConfig(name="digits"))
    assert len(d.train) + len(d.test) == 1797 and d.info.shape == (1, 8, 8) and d.info.num_classes == 10
    tr, te = split(1797, 0.2, seed=0)
    assert not set(tr.tolist()) & set(te.tolist())
    assert d.train["x"].min() == -1 and d.train["x"].max() == 1
    b = load_dataset(DataConfig(name="digits", binarize=True))
    assert set(b.train["x"].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(b.train["x"], load_dataset(DataConfig(name="digits", binarize=True)).train["x"])  # fixed seed


@pytest.mark.parametrize("variant", ["moons", "swissroll", "gaussians8", "checkerboard"])
def test_toy2d_variants(variant):
    d = load_dataset(DataConfig(name="toy2d", variant=variant, size=1000))
    x = d.train["x"]
    assert x.shape == (1000, 2) and torch.isfinite(x).all()
    assert 0.3 < x.std(0).mean() < 3  # roughly unit scale, as the preconditioning assumes


def test_gaussians8_points_sit_on_their_modes():
    from deepatlas.data.toy2d import gaussians8_centers

    x = load_dataset(DataConfig(name="toy2d", variant="gaussians8", size=2000)).train["x"]
    d = torch.cdist(x, gaussians8_centers()).min(1).values
    assert (d < 0.5).all()  # std 0.1 -> 0.5 is 5 standard deviations


def test_unknown_names_suggest_the_closest():
    with pytest.raises(UserError, match="did you mean 'digits'"):
        load_dataset(DataConfig(name="digit"))
    with pytest.raises(UserError, match="did you mean 'moons'"):
        load_dataset(DataConfig(name="toy2d", variant="moon"))
