"""The shared trainer: exact resume, NaN stop, atomic checkpoints, config conflicts."""

import json

import pytest
import torch

from deepatlas.errors import TrainingDiverged, UserError
from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.config import TrainConfig
from deepatlas.train.metrics import read_metrics
from deepatlas.train.trainer import BatchOrder, fit


def _cfg(**kw):
    base = dict(steps=40, batch_size=16, lr=1e-2, warmup=5, log_every=1, ckpt_every=10, ema_decay=0.9)
    base.update(kw)
    return TrainConfig(**base)


def test_resume_continues_exactly(tmp_path, toy_regression):
    Regression, data = toy_regression
    torch.manual_seed(0)
    straight = Regression(Regression.Config(), data.info)
    fit(straight, data, _cfg(), tmp_path / "a", progress=False)

    torch.manual_seed(0)
    first = Regression(Regression.Config(), data.info)
    fit(first, data, _cfg(steps=17, ckpt_every=17), tmp_path / "b", progress=False)
    torch.manual_seed(123)  # a different init: resume must overwrite it from the checkpoint
    second = Regression(Regression.Config(), data.info)
    fit(second, data, _cfg(), tmp_path / "b", progress=False)

    a = read_metrics(tmp_path / "a" / "metrics.jsonl")
    b = read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 41))
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    for k, v in straight.state_dict().items():
        assert torch.equal(v, second.state_dict()[k]), k


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, toy_regression):
    Regression, data = toy_regression
    method = Regression(Regression.Config(nan_at=25), data.info)
    with pytest.raises(TrainingDiverged, match="at step 25.*step 20 is intact"):
        fit(method, data, _cfg(), tmp_path, progress=False)
    saved = Checkpointer(tmp_path).load()
    assert saved.step == 20
    assert all(torch.isfinite(v).all() for v in saved.weights.values() if v.is_floating_point())


def test_checkpoints_are_pruned_and_latest_wins(tmp_path, toy_regression):
    Regression, data = toy_regression
    fit(Regression(Regression.Config(), data.info), data, _cfg(keep=2), tmp_path, progress=False)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step-00000030", "step-00000040"]
    assert (tmp_path / "model.safetensors").exists()
    # A damaged newest checkpoint falls back to the one before.
    (tmp_path / "checkpoints" / "step-00000040" / "model.safetensors").write_bytes(b"garbage")
    assert Checkpointer(tmp_path).load().step == 30


def test_failed_checkpoint_write_keeps_previous(tmp_path, toy_regression, monkeypatch):
    Regression, data = toy_regression
    method = Regression(Regression.Config(), data.info)
    fit(method, data, _cfg(steps=10), tmp_path, progress=False)
    import errno

    import deepatlas.train.checkpoint as ck

    real = ck.write_bytes_atomic

    def full_disk(path, data):  # the weights of the new checkpoint get written, then the disk is full
        if path.name == "optimizer.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(ck, "write_bytes_atomic", full_disk)
    with pytest.raises(UserError, match="disk is full.*step 10 is intact"):
        fit(method, data, _cfg(steps=20), tmp_path, progress=False)
    monkeypatch.undo()
    assert Checkpointer(tmp_path).load().step == 10
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_batch_order_covers_each_epoch_once():
    order = BatchOrder(n=50, global_batch=8, seed=3)
    from deepatlas.train.distributed import World

    idx = torch.cat([order.indices(s, World()) for s in range(25)])  # 200 positions = 4 epochs
    for e in range(4):
        assert sorted(idx[e * 50:(e + 1) * 50].tolist()) == list(range(50))
    # two ranks split the global batch of one process
    both = torch.cat([order.indices(7, World(0, 2)), order.indices(7, World(1, 2))])
    assert torch.equal(both, order.indices(7, World()))


def test_metrics_are_json_lines(tmp_path, toy_regression):
    Regression, data = toy_regression
    fit(Regression(Regression.Config(), data.info), data, _cfg(steps=5), tmp_path, progress=False)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [1, 2, 3, 4, 5]


def test_resume_accepts_the_same_config_with_tuple_fields(tmp_path):
    from deepatlas.data.base import DataConfig
    from deepatlas.registry import get
    from deepatlas.train.run import RunConfig, start_run

    spec = get("method", "edm").obj
    cfg = RunConfig("edm", DataConfig(), spec.Config(channel_mult=(1, 2)), TrainConfig())
    start_run(tmp_path, cfg)
    start_run(tmp_path, cfg)  # same run: accepted
    other = RunConfig("edm", DataConfig(), spec.Config(channel_mult=(1, 2, 2)), TrainConfig(lr=1.0))
    with pytest.raises(UserError, match=r"model.channel_mult .*train.lr"):
        start_run(tmp_path, other)
