"""Continuous diffusion as a trainable method: a network (U-Net for images, MLP for vectors) wrapped into
a denoiser by one of the four preconditionings, trained on lambda(sigma)-weighted denoising, sampled by
any sampler on any sigma grid. `ddpm`, `ve`, `flow` and `edm` are the same class with a different
formulation; class-conditional training drops labels with probability p_uncond for classifier-free guidance.
"""

from __future__ import annotations

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
from deepatlas.errors import UserError, unknown
from deepatlas.method import Method
from deepatlas.nn.noise_mlp import NoiseMLP
from deepatlas.nn.unet import UNet
from deepatlas.registry import register_method


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

    def grid(self, sampler: str, steps: int) -> torch.Tensor:
        kind = SAMPLERS[sampler][1]
        p = self.precond
        if kind in ("ddpm", "ddim"):
            table = p.sigmas if isinstance(p, VPPrecond) else sigma_grids.vp_table().float().clamp(p.sigma_min, p.sigma_max)
            return sigma_grids.ddpm(table) if kind == "ddpm" else sigma_grids.ddim(steps, table)
        if isinstance(p, FlowPrecond) and sampler == "euler":
            return sigma_grids.uniform_t(steps)
        return sigma_grids.karras(steps, p.sigma_min, p.sigma_max)

    @torch.no_grad()
    def sample(self, n: int, sampler: str | None = None, steps: int | None = None, y: torch.Tensor | None = None,
               guidance: float | None = None, generator: torch.Generator | None = None, callback=None,
               **opts) -> torch.Tensor:
        sampler = sampler or self.cfg.sampler or self.default_sampler
        if sampler not in SAMPLERS:
            raise unknown("sampler", sampler, SAMPLERS)
        steps = steps or self.cfg.sample_steps or DEFAULT_STEPS[sampler]
        if steps < 1:
            raise UserError(f"--steps must be >= 1, got {steps}")
        fn, _, fixed, _ = SAMPLERS[sampler]
        sigmas = self.grid(sampler, steps)
        was_training = self.training
        self.eval()
        D = self.denoiser
        if self.num_classes:
            y = (torch.arange(n) % self.num_classes if y is None else y).to(self.device)
            D = guided(self.denoiser, y, self.num_classes, self.cfg.guidance if guidance is None else guidance)
        x = seeded.randn((n, *self.info.shape), generator, self.device) * sigmas[0]
        x = fn(D, x, sigmas, generator=generator, callback=callback, **{**fixed, **opts})
        self.train(was_training)
        return x

    def nfe(self, sampler: str, steps: int) -> int:
        return SAMPLERS[sampler][3](steps)

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        from deepatlas.report.grid import save_grid, save_scatter

        g = torch.Generator().manual_seed(0)
        if self.info.kind == "image":
            return [save_grid(self.sample(64, generator=g), Path(folder) / f"step-{step:08d}.png", nrow=8)]
        return [save_scatter(self.sample(2000, generator=g), Path(folder) / f"step-{step:08d}.png", title=f"step {step}")]

    def sample_cli(self, out: Path, n: int, seed: int, sampler=None, steps=None, guidance=None, label=None,
                   **opts) -> Path:
        from deepatlas.report.grid import save_grid, save_scatter
        from deepatlas.report.trajectory import save_trajectory

        g = torch.Generator().manual_seed(seed)
        y = None
        if label is not None:
            if not self.num_classes or not 0 <= label < self.num_classes:
                raise UserError(f"--label {label} needs a class-conditional run with labels 0..{self.num_classes - 1}")
            y = torch.full((n,), label)
        frames: list[torch.Tensor] = []
        x = self.sample(n, sampler, steps, y=y, guidance=guidance, generator=g,
                        callback=lambda i, s, xi, D: frames.append(D[:8].clone()), **opts)
        if self.info.kind == "image":
            path = save_grid(x, out)
            save_trajectory(frames, out.with_name(out.stem + "-trajectory.png"))
            return path
        return save_scatter(x, out, title=f"{n} samples")

    def evaluate(self, dataset, n: int) -> dict[str, float]:
        from deepatlas.eval.fid import fid_against_test
        from deepatlas.eval.mmd import mmd_rbf

        sampler = self.cfg.sampler or self.default_sampler
        steps = self.cfg.sample_steps or DEFAULT_STEPS[sampler]
        g = torch.Generator().manual_seed(0)
        samples = torch.cat([self.sample(min(256, n - i), generator=g) for i in range(0, n, 256)])
        out = {"sampler": sampler, "steps": steps, "nfe": self.nfe(sampler, steps), "n_samples": n}
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
