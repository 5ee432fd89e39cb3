"""Linear probe, kNN and the t-SNE picture on features whose answer is known; the CLI round trip."""

import json

import pytest
import torch

from deepatlas.cli import main
from deepatlas.eval.embedding_picture import tsne_png
from deepatlas.eval.knn import knn_accuracy
from deepatlas.eval.linear_probe import linear_probe


def _blobs(n, seed, sep):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    centres = sep * torch.eye(4, 6)
    return centres[y] + torch.randn(n, 6, generator=g), y


def test_separable_features_score_one_and_noise_scores_chance():
    xtr, ytr = _blobs(400, 0, 20.0)
    xte, yte = _blobs(200, 1, 20.0)
    assert linear_probe(xtr, ytr, xte, yte) == 1.0
    assert knn_accuracy(xtr, ytr, xte, yte, k=5) == 1.0
    g = torch.Generator().manual_seed(2)
    noise_tr, noise_te = torch.randn(400, 6, generator=g), torch.randn(2000, 6, generator=g)
    assert linear_probe(noise_tr, ytr, noise_te, torch.randint(0, 4, (2000,), generator=g)) < 0.33
    assert knn_accuracy(noise_tr, ytr, noise_te, torch.randint(0, 4, (2000,), generator=g)) < 0.33


def test_knn_one_neighbour_by_cosine():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    test = torch.tensor([[10.0, 1.0], [0.1, 3.0]])  # cosine, not Euclidean: scale does not matter
    assert knn_accuracy(train, torch.tensor([0, 1]), test, torch.tensor([0, 1]), k=1) == 1.0


def test_tsne_png(tmp_path):
    x, y = _blobs(60, 0, 10.0)
    path = tsne_png(x, y, tmp_path / "t.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("method", ["contrastive", "simclr", "cpc", "supervised"])
def test_train_then_eval_from_the_cli(tmp_path, method, capsys):
    out = tmp_path / method
    rc = main(["train", method, "--data", "digits", "--out", str(out), "--train-steps", "3", "--no-progress",
               "--model-width", "8", "--model-dim", "16", "--model-probe-train", "200"])
    assert rc == 0
    assert main(["eval", str(out), "--n", "60"]) == 0
    res = json.loads((out / "eval.json").read_text())
    assert 0.0 <= res["linear_probe_acc"] <= 1.0 and 0.0 <= res["knn_acc"] <= 1.0
    assert (out / "eval" / "tsne.png").exists()


def test_mi_from_the_cli_and_a_wrong_dataset(tmp_path, capsys):
    out = tmp_path / "mi"
    assert main(["train", "mi", "--out", str(out), "--train-steps", "3", "--no-progress", "--model-critic", "separable"]) == 0
    assert main(["eval", str(out), "--n", "256"]) == 0
    res = json.loads((out / "eval.json").read_text())
    assert res["true_mi"] == pytest.approx(0.7192, abs=1e-4) and res["infonce_estimate"] <= res["log_N"]
    assert main(["train", "mi", "--data", "digits", "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "correlated-gaussians" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["contrastive", "simclr", "cpc", "supervised", "mi"])
def test_method_help_prints(method, capsys):
    assert main(["train", method, "--help"]) == 0
    assert "--model-" in capsys.readouterr().out
