"""The interface every method implements, so that one trainer and one CLI serve them all.

A method is an `nn.Module` built from `(cfg, info)`: its typed config and the dataset's `DataInfo`.
Everything the trainer and the CLI use is declared here, with a default; nothing is discovered by
`hasattr` or by reading signatures.

- `loss(batch) -> dict`: key `loss` (a scalar to minimise) plus any metrics to log.
- `SampleConfig`: the dataclass of sampling options (built with `deepatlas.config.option`, so that
  `deepatlas sample RUN` and `deepatlas eval RUN` turn it into flags), or None for a method that does
  not sample. `sample_defaults()` is the run's own choice of those options (its config's defaults).
- `sample(n, generator, opts)`: n samples drawn with `opts` (a SampleConfig); one name for every family.
  Images and vectors come back in the data's training scale (images in [-1, 1], {0, 1} for binary data),
  text as token ids (n, P + length), detectors as detections on test images.
- `sample_files(n, generator, opts, out) -> (samples, paths)`: the CLI's hook: draw and write the
  pictures/text `deepatlas sample` shows (a PNG grid or scatter by default).
- `raw_samples(samples) -> dict[str, numpy array]`: the samples in data units for `--format npz|safetensors`.
- `evaluate(dataset, n, generator, opts=None, folder=None) -> dict`: the metric its field uses, for
  `deepatlas eval`; `generator` (from --seed) drives every random draw of the evaluation; `opts` the
  sampling options (None: the run's); `folder` receives pictures when `evaluate_writes_pictures`.
- `write_samples(folder, step) -> list[Path]`: pictures written at checkpoints.

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

import numpy as np
import torch
from torch import nn

from deepatlas.errors import UserError


class Method(nn.Module):
    Config: ClassVar[type]
    SampleConfig: ClassVar[type | None] = None  # typed sampling options; None: the method does not sample
    evaluate_writes_pictures: ClassVar[bool] = False  # whether evaluate() writes pictures into `folder`

    def __init__(self, cfg: Any, info: Any):
        super().__init__()
        self.cfg = cfg
        self.info = info

    @property
    def device(self) -> torch.device:
        """Where the weights are: the device for tensors a sampler creates from nothing. Looked up once
        (walking the parameters cost ~15 µs, a sixth of a small sampling call) and again after every
        move: `.to()`, `.cuda()`, `.cpu()` all go through `_apply`, and `load_state_dict(assign=True)` can
        swap in tensors from elsewhere. Move the whole method, not one of its submodules: a submodule's own
        `.to()` does not pass through this class."""
        device = self.__dict__.get("_device")
        if device is None:
            device = self.__dict__["_device"] = next(self.parameters()).device
        return device

    def _apply(self, fn, *args, **kwargs):
        self.__dict__.pop("_device", None)
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        self.__dict__.pop("_device", None)
        return super().load_state_dict(*args, **kwargs)

    # ---- training ---------------------------------------------------------------------------------

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{'loss': scalar to minimise, **metrics} for one batch."""
        raise NotImplementedError

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"model": [p for p in self.parameters() if p.requires_grad]}

    def batches_per_step(self) -> int:
        """How many batches of examples one training step consumes (1: one batch for all phases)."""
        return 1

    def train_phases(self, batch: dict[str, torch.Tensor]) -> Iterator[tuple[str, Callable[[], dict]]]:
        yield "model", lambda: self.loss(batch)

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        """Pictures written at a checkpoint (none by default)."""
        return []

    # ---- sampling ---------------------------------------------------------------------------------

    def sample_defaults(self) -> Any:
        """The run's sampling options: its SampleConfig with the defaults its config chose."""
        if self.SampleConfig is None:
            raise UserError(f"method '{getattr(self, 'method_name', type(self).__name__)}' does not draw samples; "
                            "try `deepatlas eval RUN`")
        return self.SampleConfig()

    def sample(self, n: int, generator: torch.Generator | None, opts: Any = None) -> Any:
        """n samples drawn with `opts` (a SampleConfig; None: `sample_defaults()`), every random draw from
        `generator` (None: the global RNG)."""
        self.sample_defaults()  # the one-line error of a method that does not sample
        raise NotImplementedError

    def sample_files(self, n: int, generator: torch.Generator | None, opts: Any, out: Path) -> tuple[Any, list[Path]]:
        """`deepatlas sample`: draw n samples and write what shows them at `out` -> (samples, files written)."""
        from deepatlas.generative.pictures import save_samples

        x = self.sample(n, generator, opts)
        return x, [save_samples(x, self.info, out, title=f"{n} samples")]

    def raw_samples(self, samples: Any) -> dict[str, np.ndarray]:
        """What `sample` returned, in data units (`deepatlas.data.units`), as named arrays."""
        from deepatlas.data.units import to_data_units

        return to_data_units(samples, self.info)

    # ---- evaluation -------------------------------------------------------------------------------

    def evaluate(self, dataset: Any, n: int, generator: torch.Generator | None = None, opts: Any = None,
                 folder: Path | None = None) -> dict[str, Any]:
        """The field's metric on n test examples or samples; all randomness from `generator`."""
        return {}
