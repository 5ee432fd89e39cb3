"""SEDD (score entropy discrete diffusion) with the absorbing or the uniform process.

The network sees x_t and the noise level sigma_bar(t) (sinusoidal features added to every position) and
outputs log ratios log s(x_t)_{l,y}. For the absorbing process the output is shifted by
log(alpha / (1 - alpha)) (SEDD's scaling: the exact ratio is alpha/(1-alpha) p(x0^l = y | x_t)), so the
network's exponentiated output plays the part of an unnormalised p(x0 | x_t). Training minimises the
score-entropy bound (`score_entropy.py`) with t drawn uniformly in [t_min, 1 - t_min]; for the uniform
process the prior term at 1 - t_min is added. Samplers: Euler (tau-leaping) and Tweedie.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from deepatlas.config import option
from deepatlas.discrete.masked_diffusion import sample_times
from deepatlas.discrete.processes import PROCESSES
from deepatlas.discrete.score_entropy import prior_kl, score_entropy
from deepatlas.discrete.sigma_embedding import NoiseEmbedding
from deepatlas.language.language_model import TEXT_TRAIN_DEFAULTS, LanguageModel, TextSampleConfig, TransformerConfig
from deepatlas.nn.transformer import Transformer
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type

SAMPLERS = ("sedd-euler", "sedd-tweedie")  # registered names (deepatlas list)


class SEDD(LanguageModel):
    is_bound = True
    process_name = "absorbing"

    @dataclass
    class Config(TransformerConfig):
        sampler: str = option("sedd-tweedie", "default sampler: sedd-euler | sedd-tweedie", choices=SAMPLERS)
        steps: int = option(128, "default sampling steps", low=1)
        t_min: float = option(1e-3, "times are drawn in [t_min, 1 - t_min]", low=1e-6, high=0.1)

    defaults = {"data": {"name": "text"}, "train": TEXT_TRAIN_DEFAULTS}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.process = PROCESSES[self.process_name](self.vocab)
        K = self.process.n_states
        self.net = Transformer(K, K, cfg.d_model, cfg.n_layers, cfg.n_heads)
        self.noise = NoiseEmbedding(cfg.d_model)

    def log_score(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(torch.float32)
        h = self.net(xt, cond=self.noise(self.process.sigma_bar(t)))
        if self.process.mask_id is not None:
            # log(alpha / (1 - alpha)); - log N starts the unnormalised p(x0 | x_t) near a distribution
            h = h + torch.log((1 - t) / t)[:, None, None] - math.log(self.vocab)
        return h

    def nll(self, x):
        lo, hi = self.cfg.t_min, 1 - self.cfg.t_min
        t = sample_times(len(x), lo, hi, x.device)
        xt = self.process.sample(x, t)
        se = score_entropy(self.log_score(xt, t), xt, x, t, self.process) * (hi - lo)
        return se + prior_kl(x, torch.full((len(x),), hi, device=x.device), self.process).to(se.dtype)

    @dataclass
    class SampleConfig(TextSampleConfig):
        sampler: str = option("", "sampler: sedd-euler | sedd-tweedie (empty: the run's)", choices=("",) + SAMPLERS)
        steps: int = option(0, "sampling steps (0: the run's)", low=0)

    def sample_defaults(self):
        return self.SampleConfig(sampler=self.cfg.sampler)

    def greedy_options(self, length):
        return self.SampleConfig(length=length, steps=length)

    @torch.no_grad()
    def complete(self, prompt, opts):
        from deepatlas.registry import get

        opts = check_type(opts, self.SampleConfig)
        run = get("sampler", opts.sampler or self.cfg.sampler).obj  # the registered name selects the function
        steps, length = opts.steps or self.cfg.steps, self.length_of(opts)
        P = prompt.shape[1]
        x = torch.cat([prompt, self.process.prior_sample((len(prompt), length), prompt.device)], 1)
        fixed = torch.zeros_like(x, dtype=torch.bool)
        fixed[:, :P] = True
        return run(self.log_score, self.process, x, steps, t_max=1 - self.cfg.t_min, fixed=fixed)


@register_method("sedd-absorb", "discrete", "SEDD: score entropy with the absorbing (mask) process; Euler/Tweedie samplers")
class SEDDAbsorb(SEDD):
    process_name = "absorbing"


@register_method("sedd-uniform", "discrete", "SEDD: score entropy with the uniform process; Euler/Tweedie samplers")
class SEDDUniform(SEDD):
    process_name = "uniform"
