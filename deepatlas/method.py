"""The interface every method implements, so that one trainer and one CLI serve them all.

A method is an `nn.Module` built from `(cfg, info)`: its typed config and the dataset's `DataInfo`.
It holds its networks and its objective and exposes

- `loss(batch) -> dict`: key `loss` (a scalar to minimise) plus any metrics to log;
- what its family does (`sample`, `nll`, `embed`, `detect`, `generate`, ...);
- optionally `write_samples(folder, step)` (pictures written at checkpoints) and
  `evaluate(dataset, n) -> dict` (the metric its field uses, for `deepatlas eval`).

The trainer moves the method to a GPU when there is one, so tensors made inside `loss` or a sampler go
on the device of the inputs (`x.device`, `torch.randn_like`, `x.new_zeros`) or of the weights (`self.device`).

Several optimizers (GANs): override `optim_groups()` to name parameter groups, and `train_phases(batch)`
to yield `(group, closure)` pairs in order; the trainer runs each closure, back-propagates its `loss`
and steps only that group's optimizer. The default is one group, `model`, with one phase.
A method whose phases each want their own examples (WGAN-GP's critic steps, each on a fresh real batch)
returns k > 1 from `batches_per_step()`: the trainer then hands `train_phases` k batches' worth of
examples at once (k * batch_size rows, the next k slices of the data order), and the method splits them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn


class Method(nn.Module):
    Config: ClassVar[type]

    def __init__(self, cfg: Any, info: Any):
        super().__init__()
        self.cfg = cfg
        self.info = info

    @property
    def device(self) -> torch.device:
        """Where the weights are: the device for tensors a sampler creates from nothing."""
        return next(self.parameters()).device

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"model": [p for p in self.parameters() if p.requires_grad]}

    def batches_per_step(self) -> int:
        """How many batches of examples one training step consumes (1: one batch for all phases)."""
        return 1

    def train_phases(self, batch: dict[str, torch.Tensor]) -> Iterator[tuple[str, Callable[[], dict]]]:
        yield "model", lambda: self.loss(batch)

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        return []

    def evaluate(self, dataset: Any, n: int) -> dict[str, float]:
        return {}
