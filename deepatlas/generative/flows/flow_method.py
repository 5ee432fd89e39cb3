"""Normalizing flows as methods: one class trains any flow by maximum likelihood (exact log p(x) by the
change of variables, flows/base.py); the subclasses only build their flow.

Images (grey levels) are dequantised (dequantize.py) and the loss and evaluation are in bits/dim;
vectors (toy2d) are modelled as they are and reported in nats. Binary images are refused (use the
autoregressive models). Sampling: z ~ N(0, T^2 I), x = f^-1(z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from deepatlas import seeded
from deepatlas.config import option
from deepatlas.data.base import IMAGE_DATASETS
from deepatlas.errors import UserError
from deepatlas.generative.flows.base import log_prob
from deepatlas.generative.flows.dequantize import bits_per_dim, dequantize, to_image
from deepatlas.generative.flows.glow import glow
from deepatlas.generative.flows.maf import maf
from deepatlas.generative.flows.planar import Planar
from deepatlas.generative.flows.base import Sequence
from deepatlas.generative.flows.realnvp import realnvp
from deepatlas.generative.pictures import fid_or_none, save_samples
from deepatlas.method import Method
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type


@dataclass
class FlowConfig:
    steps: int = option(4, "flow steps (per level for images)", low=1)
    levels: int = option(2, "multi-scale levels for images", low=1)
    hidden: int = option(64, "hidden width / channels of the coupling networks", low=1)
    grey_levels: int = option(0, "grey levels of the images for dequantisation (0: from the dataset, else 256)", low=0)
    temperature: float = option(1.0, "sampling temperature T of the pictures (z ~ N(0, T^2 I))", low=0.0)


class FlowMethod(Method):
    Config = FlowConfig
    datasets = ("toy2d", *IMAGE_DATASETS)
    defaults = {"data": {"name": "toy2d", "variant": "moons"}, "train": {"lr": 1e-3, "steps": 3000}}
    image_ok = True

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        if info.extra.get("binary"):
            raise UserError("flows model grey-level images; drop --data-binarize (binary data: use fvsbn, nade or made)")
        self.image = info.kind == "image"
        if self.image and not self.image_ok:
            raise UserError(f"{type(self).__name__.lower()} is for vector data (e.g. --data toy2d); use realnvp or glow for images")
        self.dims = math.prod(info.shape)
        self.grey = cfg.grey_levels or int(info.extra.get("levels", 256))
        self.flow = self.build(cfg, tuple(info.shape))

    def build(self, cfg, shape):
        raise NotImplementedError

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return dequantize(x.float(), self.grey) if self.image else x.float()

    def log_prob(self, v: torch.Tensor) -> torch.Tensor:
        return log_prob(self.flow, v)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example NLL: bits/dim (dequantised images) or nats (vectors)."""
        lp = self.log_prob(self._prepare(x))
        return bits_per_dim(lp, self.dims, self.grey) if self.image else -lp

    def loss(self, batch):
        nll = self.nll(batch["x"]).mean()
        return {"loss": nll, ("bits_per_dim" if self.image else "nats"): nll.detach()}

    @dataclass
    class SampleConfig:
        temperature: float | None = option(None, "scale of the base noise z (unset: the run's --model-temperature)",
                                           low=0.0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, opts=None) -> torch.Tensor:
        """x = f^-1(T z), z ~ N(0, I)."""
        opts = check_type(opts, self.SampleConfig)
        self.eval()
        t = self.cfg.temperature if opts.temperature is None else opts.temperature
        z = seeded.randn((n, self.dims), generator, self.device)
        v = self.flow.inverse(t * z.view(n, *self._z_shape()))
        return to_image(v, self.grey) if self.image else v

    def _z_shape(self):
        return (self.dims,)

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        x = self.sample(64 if self.image else 2000, torch.Generator().manual_seed(0))
        return [save_samples(x, self.info, Path(folder) / f"step-{step:08d}.png", title=f"step {step}")]

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator: torch.Generator | None = None, opts=None, folder=None,
                 batch: int = 200, fid: bool = True) -> dict:
        self.eval()
        x = dataset.test.get(torch.arange(min(n, len(dataset.test))))["x"]
        nll = torch.cat([self.nll(xb) for xb in x.split(batch)]).mean().item()
        if self.image:
            out = {"n": len(x), "bits_per_dim": nll, "nll_nats": nll * self.dims * math.log(2)}
            if fid:
                out.update(fid_or_none(self.sample(n, generator, opts), dataset))
            return out
        return {"n": len(x), "nll_nats": nll}


class _FlatImages(Sequence):
    """Runs a flow on vectors over flattened images (MAF on images)."""

    def __init__(self, flow, shape):
        super().__init__([flow])
        self.shape = shape

    def forward(self, x):
        return self.layers[0](x.flatten(1))

    def inverse(self, z):
        return self.layers[0].inverse(z.flatten(1)).view(len(z), *self.shape)


@register_method("planar", "generative", "planar flow (a stack of x + u h(w.x + b)); density on vectors")
class PlanarFlow(FlowMethod):
    datasets = ("toy2d",)
    image_ok = False

    @dataclass
    class Config(FlowConfig):
        steps: int = option(16, "planar layers", low=1)

    def build(self, cfg, shape):
        return Sequence([Planar(shape[0]) for _ in range(cfg.steps)])


@register_method("realnvp", "generative", "RealNVP: masked affine couplings, multi-scale for images; bits/dim")
class RealNVP(FlowMethod):
    Config = FlowConfig

    def build(self, cfg, shape):
        return realnvp(shape, cfg.steps, cfg.levels, cfg.hidden)


@register_method("glow", "generative", "Glow: actnorm + invertible 1x1 conv + coupling, multi-scale; bits/dim")
class Glow(FlowMethod):
    Config = FlowConfig

    def build(self, cfg, shape):
        return glow(shape, cfg.steps, cfg.levels, cfg.hidden)


@register_method("maf", "generative", "MAF: stacked MADE affine autoregressive layers; exact density")
class MAF(FlowMethod):
    @dataclass
    class Config(FlowConfig):
        steps: int = option(5, "MAF layers (orders alternate)", low=1)
        hidden: int = option(128, "hidden units per MADE layer", low=1)

    def build(self, cfg, shape):
        flow = maf(math.prod(shape), cfg.steps, cfg.hidden)
        return _FlatImages(flow, shape) if len(shape) == 3 else flow
