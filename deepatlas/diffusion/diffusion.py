"""Continuous diffusion as a trainable method: a network (U-Net for images, MLP for vectors) wrapped into
a denoiser by one of the four preconditionings, trained on lambda(sigma)-weighted denoising, sampled by
any sampler on any sigma grid. `ddpm`, `ve`, `flow` and `edm` are the same class with a different
formulation; class-conditional training drops labels with probability p_uncond for classifier-free guidance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from deepatlas import seeded
from deepatlas.config import option
from deepatlas.data.base import IMAGE_DATASETS
from deepatlas.diffusion import sigma_grids
from deepatlas.diffusion.denoiser import Denoiser, guided
from deepatlas.diffusion.preconditioning import EDMPrecond, FlowPrecond, VEPrecond, VPPrecond
from deepatlas.diffusion.samplers import SAMPLERS
from deepatlas.errors import UserError
from deepatlas.method import Method
from deepatlas.nn.noise_mlp import NoiseMLP
from deepatlas.nn.unet import UNet
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type, refuse_unused


@dataclass
class DiffusionConfig:
    channels: int = option(32, "U-Net base channels", low=4)
    channel_mult: tuple[int, ...] = option((1, 2), "U-Net channel multiplier per resolution level (one level halves the size)")
    num_res_blocks: int = option(1, "U-Net residual blocks per level", low=1)
    attention: bool = option(True, "U-Net self-attention at the lowest resolution")
    dropout: float = option(0.0, "dropout inside residual blocks", low=0.0, high=1.0)
    hidden: int = option(256, "MLP width (vector data)", low=4)
    depth: int = option(4, "MLP residual blocks (vector data)", low=1)
    sigma_data: float = option(0.5, "data standard deviation assumed by the EDM preconditioning", low=1e-3)
    beta_schedule: str = option("linear", "DDPM beta schedule (ddpm only)", choices=("linear", "cosine"))
    class_cond: bool = option(False, "condition on class labels (classifier-free guidance at sampling)")
    p_uncond: float = option(0.1, "probability of dropping the label in training (class_cond)", low=0.0, high=1.0)
    sampler: str = option("", "default sampler for pictures and eval (empty: the formulation's own)")
    sample_steps: int = option(0, "default sampler steps (0: the sampler's default)", low=0)
    guidance: float = option(1.0, "default classifier-free guidance weight w (1: plain conditional)", low=0.0)


DEFAULT_STEPS = {"ddpm": 1000, "ddim": 50, "euler": 35, "heun": 18, "dpmpp-2m": 20}


@dataclass
class DiffusionSampleConfig:
    sampler: str = option("", "sampler: ddpm | ddim | euler | heun | dpmpp-2m (empty: the run's)")
    steps: int = option(0, "sampling steps (0: the run's, else the sampler's default; ddpm: strided timesteps)", low=0)
    eta: float | None = option(None, "ddim only: ancestral noise, 0 deterministic .. 1 DDPM-like (unset: 0)", low=0.0)
    churn: float | None = option(None, "heun only: EDM churn S_churn (unset: 0)", low=0.0)
    guidance: float | None = option(None, "class-conditional runs: guidance weight w (unset: the run's)", low=0.0)
    label: int | None = option(None, "class-conditional runs: the class to draw (unset: every class in turn)", low=0)


class Diffusion(Method):
    Config = DiffusionConfig
    datasets = (*IMAGE_DATASETS, "toy2d")
    formulation = "edm"
    default_sampler = "heun"
    defaults = {"data": {"name": "digits"}}

    def __init__(self, cfg: DiffusionConfig, info):
        super().__init__(cfg, info)
        ncls = info.num_classes if cfg.class_cond else 0
        if cfg.class_cond and not info.num_classes:
            raise UserError("--model-class-cond needs a labelled dataset (digits, fashion-mnist)")
        if info.kind == "image":
            net = UNet(info.shape[0], cfg.channels, tuple(cfg.channel_mult), cfg.num_res_blocks, cfg.attention,
                       cfg.dropout, ncls)
        elif info.kind == "vector":
            net = NoiseMLP(info.shape[0], cfg.hidden, cfg.depth, num_classes=ncls)
        else:
            raise UserError(f"diffusion needs image or vector data, got {info.kind}; try --data digits or toy2d")
        self.denoiser = Denoiser(net, self.make_precond(cfg))
        self.num_classes = ncls

    def make_precond(self, cfg):
        if self.formulation == "ddpm":
            return VPPrecond(cfg.sigma_data, cfg.beta_schedule)
        return {"ve": VEPrecond, "flow": FlowPrecond, "edm": EDMPrecond}[self.formulation](cfg.sigma_data)

    @property
    def precond(self):
        return self.denoiser.precond

    def loss(self, batch):
        x0, y = batch["x"], None
        if self.num_classes:
            drop = torch.rand(len(batch["y"]), device=x0.device) < self.cfg.p_uncond
            y = batch["y"].masked_fill(drop, self.num_classes)  # the "no label" index
        return {"loss": self.denoiser.loss(x0, y).mean()}

    # ---- sampling -------------------------------------------------------------------------------

    SampleConfig = DiffusionSampleConfig

    def sample_defaults(self) -> DiffusionSampleConfig:
        return DiffusionSampleConfig(sampler=self.cfg.sampler or self.default_sampler, steps=self.cfg.sample_steps)

    def resolve(self, opts: DiffusionSampleConfig | None) -> tuple[DiffusionSampleConfig, int]:
        """Fill unset options from the run, check each against the sampler; -> (opts, steps)."""
        from deepatlas.registry import get

        opts = check_type(opts, DiffusionSampleConfig)
        opts = dataclasses.replace(opts, sampler=opts.sampler or self.cfg.sampler or self.default_sampler)
        get("sampler", opts.sampler)  # an unknown name: the closest one suggested
        if opts.sampler not in SAMPLERS:
            raise UserError(f"sampler '{opts.sampler}' is not a continuous-diffusion sampler; "
                            f"choose one of {', '.join(SAMPLERS)}")
        refuse_unused(opts, opts.sampler, {k: tuple(n for n, s in SAMPLERS.items() if k in s.options)
                                           for k in ("eta", "churn")})
        if not self.num_classes:
            for name in ("guidance", "label"):
                if getattr(opts, name) is not None:
                    raise UserError(f"--{name} needs a class-conditional run (trained with --model-class-cond)")
        if opts.label is not None and opts.label >= self.num_classes:
            raise UserError(f"--label {opts.label} is not a class of this run: labels are 0..{self.num_classes - 1}")
        return opts, opts.steps or self.cfg.sample_steps or DEFAULT_STEPS[opts.sampler]

    def grid(self, sampler: str, steps: int) -> torch.Tensor:
        kind = SAMPLERS[sampler].grid
        p = self.precond
        if kind in ("ddpm", "ddim"):  # both stride the DDPM table (ddpm at 1000 steps: all of it)
            table = p.sigmas if isinstance(p, VPPrecond) else sigma_grids.vp_table().float().clamp(p.sigma_min, p.sigma_max)
            if steps > len(table):
                raise UserError(f"--steps {steps} is more than the {len(table)} timesteps of the DDPM table")
            return sigma_grids.ddim(steps, table)
        if isinstance(p, FlowPrecond) and sampler == "euler":
            return sigma_grids.uniform_t(steps)
        return sigma_grids.karras(steps, p.sigma_min, p.sigma_max)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, opts: DiffusionSampleConfig | None = None,
               callback=None) -> torch.Tensor:
        """n samples in the data scale; `callback(i, sigma, x, denoised)` sees every step."""
        from deepatlas.registry import get

        opts, steps = self.resolve(opts)
        spec = get("sampler", opts.sampler).obj  # the registered name selects the function
        own = {k: getattr(opts, k) for k in spec.options if getattr(opts, k) is not None}
        sigmas = self.grid(opts.sampler, steps)
        was_training = self.training
        self.eval()
        D = self.denoiser
        if self.num_classes:
            y = torch.arange(n) % self.num_classes if opts.label is None else torch.full((n,), opts.label)
            D = guided(self.denoiser, y.to(self.device), self.num_classes,
                       self.cfg.guidance if opts.guidance is None else opts.guidance)
        x = seeded.randn((n, *self.info.shape), generator, self.device) * sigmas[0]
        x = spec.fn(D, x, sigmas, generator=generator, callback=callback, **{**spec.fixed, **own})
        self.train(was_training)
        return x

    def nfe(self, sampler: str, steps: int) -> int:
        return SAMPLERS[sampler].nfe(steps)

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        from deepatlas.report.grid import save_grid, save_scatter

        g = torch.Generator().manual_seed(0)
        if self.info.kind == "image":
            return [save_grid(self.sample(64, g), Path(folder) / f"step-{step:08d}.png", nrow=8)]
        return [save_scatter(self.sample(2000, g), Path(folder) / f"step-{step:08d}.png", title=f"step {step}")]

    def sample_files(self, n: int, generator, opts, out: Path) -> tuple[torch.Tensor, list[Path]]:
        """A grid and the denoising trajectory of the first 8 (images), or a scatter (vectors)."""
        from deepatlas.report.grid import save_grid, save_scatter
        from deepatlas.report.trajectory import save_trajectory

        frames: list[torch.Tensor] = []
        x = self.sample(n, generator, opts, callback=lambda i, s, xi, D: frames.append(D[:8].clone()))
        out = Path(out)
        if self.info.kind != "image":
            return x, [save_scatter(x, out, title=f"{n} samples")]
        return x, [save_grid(x, out), save_trajectory(frames, out.with_name(out.stem + "-trajectory.png"))]

    def evaluate(self, dataset, n: int, generator: torch.Generator | None = None,
                 opts: DiffusionSampleConfig | None = None, folder=None) -> dict[str, float]:
        from deepatlas.eval.fid import fid_against_test
        from deepatlas.eval.mmd import mmd_rbf

        opts, steps = self.resolve(opts if opts is not None else self.sample_defaults())
        samples = torch.cat([self.sample(min(256, n - i), generator, opts) for i in range(0, n, 256)])
        out = {"sampler": opts.sampler, "steps": steps, "nfe": self.nfe(opts.sampler, steps), "n_samples": n}
        if self.info.kind == "image":
            out.update(fid_against_test(samples, dataset))
        else:
            ref = dataset.test["x"][:n]
            out["mmd_rbf"] = mmd_rbf(samples, ref)
        return out


_FORMULATIONS = [
    ("ddpm", "heun", "DDPM: VP schedule (linear or cosine beta), eps-prediction; any sampler (ddpm, ddim, ...)"),
    ("ve", "heun", "VE / denoising score matching (NCSN): F predicts -eps, log-uniform sigma"),
    ("flow", "euler", "flow matching / rectified flow: x_t = (1-t) x0 + t eps, F predicts the velocity eps - x0"),
    ("edm", "heun", "EDM (Karras et al. 2022): preconditioned denoiser, log-normal sigma; the default"),
]

for _name, _sampler, _help in _FORMULATIONS:
    register_method(_name, "continuous diffusion", _help)(
        type(f"Diffusion_{_name}", (Diffusion,), {"formulation": _name, "default_sampler": _sampler}))
