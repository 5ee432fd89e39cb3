"""bench/throughput.py: its FLOP count matches the closed form of a linear layer, and its --quick cases run
through the registry, the trainer's step and the sampling adapter (no timing is asserted)."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from deepatlas.data.base import DataInfo
from deepatlas.method import Method
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import make_optimizers

_spec = importlib.util.spec_from_file_location("throughput", Path(__file__).parents[1] / "bench" / "throughput.py")
tp = importlib.util.module_from_spec(_spec)
sys.modules["throughput"] = tp  # dataclasses look their module up there
_spec.loader.exec_module(tp)


def test_step_flops_of_a_linear_layer_is_the_closed_form():
    B, i, o = 16, 24, 40
    lin = torch.nn.Linear(i, o)
    x = torch.randn(B, i, requires_grad=True)
    # forward 2*B*i*o, backward: input gradient 2*B*i*o and weight gradient 2*B*i*o
    assert tp.step_flops(lambda: lin(x).sum().backward()) == 6 * B * i * o
    x0 = torch.randn(B, i)  # no input gradient
    assert tp.step_flops(lambda: lin(x0).sum().backward()) == 4 * B * i * o


def test_quick_made_case_trains_and_samples():
    r = tp.run_case("made", rounds=1, reps=1, quick=True)
    assert r["batch"] == 8 and r["per_step"] == 8
    assert r["train_steps_per_s"] > 0 and math.isfinite(r["train_steps_per_s"]) and r["samples_per_s"] > 0
    assert "peer" not in r and r["step_flops"] > 0


def test_quick_ar_case_with_the_gpt2_peer_counts_the_same_work():
    pytest.importorskip("transformers")
    r = tp.run_case("ar", rounds=1, reps=1, quick=True)
    assert r["unit"] == "tokens" and r["per_step"] == 8 * 32
    # same width, depth, heads and sequence: the matmul FLOPs of a step agree to within the tied head /
    # position-embedding differences
    assert r["peer_step_flops"] == pytest.approx(r["step_flops"], rel=0.1)
    assert r["train_ratio"] > 0 and r["sample_ratio"] > 0


class _Two(Method):
    class Config:
        pass

    def __init__(self):
        super().__init__(None, DataInfo("vector", (3,), 0))
        self.w = torch.nn.Parameter(torch.randn(3))

    def loss(self, batch):
        return {"loss": (self.w * batch["x"]).pow(2).sum()}


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_trainer_adamw_matches_the_for_loop(impl):
    """The trainer's AdamW (fused by default) follows the plain for-loop AdamW to float rounding."""
    cfg = TrainConfig(lr=1e-2, weight_decay=0.1)
    runs = {}
    for how in ("for-loop", impl):
        torch.manual_seed(0)
        m = _Two()
        opt = make_optimizers(m, cfg, how)["model"]
        for k in range(30):
            opt.zero_grad()
            m.loss({"x": torch.full((3,), 1.0 + k)})["loss"].backward()
            opt.step()
        runs[how] = m.w.detach().clone()
    torch.testing.assert_close(runs[impl], runs["for-loop"], rtol=1e-6, atol=1e-7)
