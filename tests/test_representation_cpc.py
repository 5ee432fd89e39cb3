"""CPC: the k-step InfoNCE indexing, the patch grid and column sequences, causality of the context,
and that a short training run on 1-D sines learns to predict."""

import math

import pytest
import torch
from torch import nn

from deepatlas.data.base import DataConfig, DataInfo
from deepatlas.errors import UserError
from deepatlas.representation.cpc import CPC
from deepatlas.representation.cpc_loss import cpc_loss, patch_grid
from deepatlas.data.sines import load as load_sines
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit


def _identity_predictors(k_max, d):
    preds = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(k_max))
    for p in preds:
        nn.init.eye_(p.weight)
    return preds


def test_uninformative_scores_give_log_s():
    s, t, d = 6, 5, 4
    z = torch.ones(s, t, d, dtype=torch.float64)
    c = torch.zeros(s, t, d, dtype=torch.float64)
    loss, _ = cpc_loss(z, c, _identity_predictors(3, d).double())
    assert loss.item() == pytest.approx(math.log(s), abs=1e-12)


def test_perfect_context_predicts_k_steps_ahead():
    # c_t = 50 * z_{t+1}: with W_1 = I the prediction of z_{t+1} is exact, so step 1 is solved; shifting
    # the alignment by one step (a bug) would leave it at chance.
    s, t, d = 8, 6, 16
    z = torch.nn.functional.normalize(torch.randn(s, t, d, dtype=torch.float64), dim=-1)
    c = torch.zeros_like(z)
    c[:, :-1] = 50 * z[:, 1:]
    loss, acc = cpc_loss(z, c, _identity_predictors(1, d).double())
    assert acc.item() == 1.0 and loss.item() < 1e-3
    wrong = torch.zeros_like(z)
    wrong[:, :-1] = 50 * z[:, :-1]  # c_t = z_t: predicts the present, not the future
    assert cpc_loss(z, wrong, _identity_predictors(1, d).double())[1].item() < 0.5


def test_patch_grid_rows_and_columns():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    p = patch_grid(x, 4, 2)  # (B, R, Q, C, 4, 4), R = Q = 3
    assert p.shape == (2, 3, 3, 1, 4, 4)
    for r in range(3):
        for q in range(3):
            assert torch.equal(p[1, r, q], x[1, :, 2 * r: 2 * r + 4, 2 * q: 2 * q + 4])


def test_image_sequences_are_columns_read_top_down():
    info = DataInfo("image", (1, 8, 8), 10)
    m = CPC(CPC.Config(dim=16, k_max=1, patch=4, stride=2), info)
    m.encoder = nn.Flatten()  # a spy: z is the patch itself
    x = torch.randn(3, 1, 8, 8)
    z = m.sequences(x)  # (B*Q, R, 16)
    assert z.shape == (9, 3, 16)
    b, q, r = 2, 1, 2
    assert torch.equal(z[b * 3 + q, r], x[b, 0, 2 * r: 2 * r + 4, 2 * q: 2 * q + 4].flatten())


def test_context_is_causal():
    info = DataInfo("image", (1, 8, 8), 10)
    torch.manual_seed(0)
    m = CPC(CPC.Config(dim=16, width=8, k_max=2), info)
    x = torch.randn(2, 1, 8, 8)
    x2 = x.clone()
    x2[:, :, 6:] += 1.0  # changes only the last rows of patches (auto grid: 4 px patches, stride 1)
    c1, _ = m.context(m.sequences(x))
    c2, _ = m.context(m.sequences(x2))
    assert torch.allclose(c1[:, :3], c2[:, :3])  # patch rows 0..2 cover pixel rows 0..5
    assert not torch.allclose(c1[:, 4], c2[:, 4])


def test_bad_configs_are_user_errors():
    with pytest.raises(UserError, match="leaves no context"):
        CPC(CPC.Config(k_max=5), DataInfo("image", (1, 8, 8), 10))
    with pytest.raises(UserError, match="images or 1-D signals"):
        CPC(CPC.Config(), DataInfo("vector", (2,), 0))


def test_cpc_on_sines_learns_to_predict(tmp_path):
    data = load_sines(DataConfig(name="sines", size=2000))
    torch.manual_seed(0)
    m = CPC(CPC.Config(dim=32, k_max=2, probe_train=2000), data.info)
    cfg = TrainConfig(steps=150, batch_size=64, lr=2e-3, warmup=10, ema_decay=0, ckpt_every=10**6, log_every=10)
    last = fit(m, data, cfg, tmp_path, progress=False)
    assert last["loss"] < math.log(64) - 1.0  # well below chance (log S with S = 64 sequences)
    res = m.evaluate(data, 500)
    assert res["linear_probe_acc"] > 0.5  # 10 frequency classes: chance is 0.1
