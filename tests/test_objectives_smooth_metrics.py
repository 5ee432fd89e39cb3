"""Smooth accuracy and F1: exact at tau = 0 (against scikit-learn), converging as tau -> 0, differentiable."""

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from deepatlas.objectives.smooth_metrics import accuracy, f1, smooth_accuracy, smooth_f1


def _data(k, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) + 1.5 * torch.nn.functional.one_hot(y, k)  # informative
    return z, y


@pytest.mark.parametrize("k,average", [(2, "binary"), (5, "macro")])
def test_discrete_metrics_match_sklearn(k, average):
    z, y = _data(k)
    pred = z.argmax(1).numpy()
    assert accuracy(z, y).item() == pytest.approx(accuracy_score(y.numpy(), pred))
    assert f1(z, y, average).item() == pytest.approx(f1_score(y.numpy(), pred, average=average))


@pytest.mark.parametrize("k,average", [(2, "binary"), (5, "macro")])
def test_smooth_metrics_converge_to_discrete_as_temperature_goes_to_zero(k, average):
    z, y = _data(k)
    top2 = z.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).min().item()  # smallest gap between the best and second logit
    hard_acc, hard_f1 = accuracy(z, y).item(), f1(z, y, average).item()
    errs, acc_errs = [], []
    for tau in (1.0, 0.1, 0.01, 1e-3, 1e-4, 1e-5):
        e_acc = abs(smooth_accuracy(z, y, tau).item() - hard_acc)
        e_f1 = abs(smooth_f1(z, y, tau, average).item() - hard_f1)
        # every soft prediction is within (K-1) exp(-margin/tau) of the one-hot argmax
        bound = (k - 1) * torch.exp(torch.tensor(-margin / tau, dtype=torch.float64)).item()
        assert e_acc <= bound + 1e-12
        errs.append(max(e_acc, e_f1))
        acc_errs.append(e_acc)
    assert acc_errs[0] > 1e-2  # at tau = 1 the surrogate really differs
    assert errs[3] < errs[0] / 10
    assert errs[-1] < 1e-9


def test_f1_counts_by_hand():
    # 4 examples, soft positive probabilities p = sigmoid(z1 - z0) = [0.9, 0.2, 0.6, 0.1], labels [1, 1, 0, 0]
    p = torch.tensor([0.9, 0.2, 0.6, 0.1], dtype=torch.float64)
    z = torch.stack([torch.zeros(4, dtype=torch.float64), torch.logit(p)], 1)
    y = torch.tensor([1, 1, 0, 0])
    tp, fp, fn = 0.9 + 0.2, 0.6 + 0.1, 0.1 + 0.8
    assert smooth_f1(z, y, 1.0).item() == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert smooth_accuracy(z, y, 1.0).item() == pytest.approx((0.9 + 0.2 + 0.4 + 0.9) / 4)


def test_smooth_losses_have_gradients():
    z, y = _data(3, 50)
    z.requires_grad_(True)
    (smooth_f1(z, y, 0.5, "macro") + smooth_accuracy(z, y, 0.5)).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("loss", ["ce", "smooth-f1", "smooth-acc"])
def test_classifier_trains_on_imbalanced(tmp_path, loss):
    from deepatlas.data.base import DataConfig, load_dataset
    from deepatlas.objectives.classifier import Classifier
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    d = load_dataset(DataConfig(name="imbalanced", size=2000))
    assert 0.03 < d.train["y"].float().mean() < 0.07
    m = Classifier(Classifier.Config(loss=loss), d.info)
    fit(m, d, TrainConfig(steps=60, batch_size=256, lr=1e-2, warmup=5, ckpt_every=60, ema_decay=0), tmp_path, progress=False)
    r = m.evaluate(d, 5000)
    assert r["accuracy"] > 0.9 and 0.0 <= r["f1_binary"] <= 1.0


def test_cli_rejects_unknown_loss(capsys):
    from deepatlas.cli import main

    assert main(["train", "classifier", "--model-loss", "hinge", "--out", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "hinge" in err and err.count("\n") == 1
