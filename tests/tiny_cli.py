"""The deepatlas CLI with one extra, tiny method registered (`tiny`), for tests that drive the real
command line in a subprocess (fault injection, data parallelism). Run as
`python tests/tiny_cli.py train tiny --data toy2d --out DIR ...`, or under torchrun.

`tiny` regresses a fixed smooth function of the 2-D toy points with a small MLP. Its loss draws no
random numbers unless --model-noise > 0, so the loss of a batch does not depend on which process
computes it: the oracle for "2 processes x batch B == 1 process x batch 2B".

Test hooks, all off unless their environment variable is set (none changes the numbers):
- DEEPATLAS_TEST_EVENTS=FILE: append `start`, `writing N`, `saved N` lines (checkpoint progress), and
  per rank one JSON line per step to FILE.rankR with the rows of the batch and the step's RNG seed;
- DEEPATLAS_TEST_STEP_SLEEP=S: sleep S seconds in every loss (so kills land at many moments);
- DEEPATLAS_TEST_SLOW_WRITES=S: sleep S seconds before and after every atomic file write (so kills land
  inside checkpoint writes).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from deepatlas.config import option
from deepatlas.method import Method
from deepatlas.registry import register_method

EVENTS = os.environ.get("DEEPATLAS_TEST_EVENTS")
RANK = int(os.environ.get("RANK", "0"))


def event(line: str) -> None:
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write(line + "\n")


@register_method("tiny", "test", "test-only: a small MLP regressing a fixed function of 2-D points")
class Tiny(Method):
    datasets = ("toy2d",)
    @dataclass
    class Config:
        width: int = option(32, "hidden width", low=1)
        noise: float = option(0.0, "std of Gaussian input noise drawn each step (0: no sampling noise)", low=0.0)
        nan_at: int = option(0, "make the loss NaN from this loss call on (0: never)", low=0)
        nan_rank: int = option(-1, "only on this rank (-1: every rank)")
        phases: int = option(1, "2: train the body and the head with two optimizers, like a GAN", low=1, high=2)

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.net = torch.nn.Sequential(torch.nn.Linear(2, cfg.width), torch.nn.Tanh(),
                                       torch.nn.Linear(cfg.width, cfg.width), torch.nn.Tanh(),
                                       torch.nn.Linear(cfg.width, 2))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self._started = False

    def loss(self, batch):
        self.calls += 1
        x = batch["x"]
        if EVENTS:
            if not self._started:
                event(f"start {int(self.calls)}")
                self._started = True
            with open(f"{EVENTS}.rank{RANK}", "a") as f:  # the seed is the trainer's per-step, per-rank seed
                f.write(json.dumps({"call": int(self.calls), "rows": x.tolist(), "seed": torch.initial_seed()}) + "\n")
        if os.environ.get("DEEPATLAS_TEST_STEP_SLEEP"):
            time.sleep(float(os.environ["DEEPATLAS_TEST_STEP_SLEEP"]))
        target = torch.stack([torch.sin(2 * x[:, 0]) * x[:, 1], torch.cos(x[:, 1]) - x[:, 0]], 1)
        inp = x + self.cfg.noise * torch.randn_like(x) if self.cfg.noise > 0 else x
        loss = ((self.net(inp) - target) ** 2).mean()
        if self.cfg.nan_at and int(self.calls) >= self.cfg.nan_at and self.cfg.nan_rank in (-1, RANK):
            loss = loss * float("nan")
        return {"loss": loss}

    def optim_groups(self):
        if self.cfg.phases == 1:
            return super().optim_groups()
        head = list(self.net[-1].parameters())
        return {"model": [p for p in self.net.parameters() if all(p is not h for h in head)], "head": head}

    def train_phases(self, batch):
        yield "model", lambda: self.loss(batch)
        if self.cfg.phases == 2:  # the head's own objective: the same error, plus a pull of its weights to 0
            yield "head", lambda: {"loss": self.loss(batch)["loss"] + 0.1 * self.net[-1].weight.square().mean()}

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step-{step}-rank-{RANK}.txt"
        path.write_text("written by rank %d\n" % RANK)
        return [path]


def _install_hooks() -> None:
    import deepatlas.train.atomic as atomic
    import deepatlas.train.checkpoint as ck

    slow = float(os.environ.get("DEEPATLAS_TEST_SLOW_WRITES", "0"))
    if slow:
        original = atomic.write_atomic

        def slow_write(path, write):
            time.sleep(slow)
            original(path, write)
            time.sleep(slow)

        atomic.write_atomic = slow_write  # write_bytes_atomic, used by the checkpointer, calls it
    if EVENTS:
        save = ck.Checkpointer.save

        def logged_save(self, step, *a, **k):
            event(f"writing {step}")
            out = save(self, step, *a, **k)
            event(f"saved {step}")
            return out

        ck.Checkpointer.save = logged_save


if __name__ == "__main__":
    _install_hooks()
    from deepatlas.cli import main

    sys.exit(main())
