"""Masked diffusion LMs on one bidirectional Transformer: MDLM and LLaDA.

Both minimise the same objective, the continuous-time ELBO of the absorbing process with the log-linear
schedule (`masked_diffusion.py`): (1/t)-weighted cross-entropy on the masked tokens. They differ in how
they are used, following their papers:

- `mdlm`: likelihood bound from sampled times t, ancestral sampling.
- `llada`: LLaDA's Monte-Carlo likelihood (sample the number of masked tokens), generation by
  low-confidence or random remasking with semi-autoregressive blocks and classifier-free guidance, and
  supervised fine-tuning on prompt/response pairs: a batch with `prompt_len` never masks the prompt, so
  the loss falls only on the response.

The network sees no time: with the absorbing process the fraction of masks already tells the noise level
(MDLM, Sec. 3.2). Its output is over real tokens only (the SUBS parameterisation: MASK is never predicted,
and unmasked tokens are copied through by the samplers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from deepatlas.config import option
from deepatlas.discrete.masked_diffusion import llada_nelbo, mask_tokens, masked_nelbo, sample_times
from deepatlas.errors import UserError
from deepatlas.language.language_model import TEXT_TRAIN_DEFAULTS, LanguageModel, TextSampleConfig, TransformerConfig
from deepatlas.nn.transformer import Transformer
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type, refuse_unused

SAMPLERS = ("mdlm-ancestral", "llada-low-confidence", "llada-random")  # registered names (deepatlas list)
LLADA_ONLY = ("llada-low-confidence", "llada-random")


class MaskedDiffusionLM(LanguageModel):
    is_bound = True
    can_infill = True

    @dataclass
    class Config(TransformerConfig):
        sampler: str = option("mdlm-ancestral", "default sampler: " + " | ".join(SAMPLERS), choices=SAMPLERS)
        steps: int = option(128, "default denoising steps", low=1)
        block_length: int = option(0, "default semi-autoregressive block length at generation (0: one block)", low=0)
        likelihood: str = option("time", "Monte-Carlo bound: time (MDLM: draw t) | count (LLaDA: draw the number masked)",
                                 choices=("time", "count"))
        t_min: float = option(1e-3, "smallest time drawn in training (the bound's integral starts there)", low=0.0, high=0.5)

    defaults = {"data": {"name": "text"}, "train": TEXT_TRAIN_DEFAULTS}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.mask_id = self.vocab
        self.net = Transformer(self.vocab + 1, self.vocab, cfg.d_model, cfg.n_layers, cfg.n_heads)

    def logp(self, xt: torch.Tensor) -> torch.Tensor:
        """log p(x0^l | x_t) over real tokens (B, L, N)."""
        return self.net(xt).log_softmax(-1)

    def nll(self, x, keep=None):
        if self.cfg.likelihood == "count":
            return llada_nelbo(self.logp, x, self.mask_id, keep)
        t = sample_times(len(x), self.cfg.t_min, 1.0, x.device)
        xt = mask_tokens(x, t, self.mask_id, keep)
        return masked_nelbo(self.logp(xt), x, xt, t, self.mask_id) * (1 - self.cfg.t_min)

    def loss(self, batch):
        x = batch["x"]
        if "prompt_len" not in batch:
            return super().loss(batch)
        keep = torch.arange(x.shape[1], device=x.device)[None] < batch["prompt_len"][:, None]  # SFT: prompt never masked
        nats = self.nll(x, keep)
        per_token = nats.sum() / (~keep).sum()
        return {"loss": per_token, "bits_per_token": per_token.detach() / math.log(2)}

    @dataclass
    class SampleConfig(TextSampleConfig):
        sampler: str = option("", "sampler: " + " | ".join(SAMPLERS) + " (empty: the run's)",
                              choices=("",) + SAMPLERS)
        steps: int = option(0, "denoising steps in all (0: the run's)", low=0)
        block: int = option(0, "semi-autoregressive block length (0: the run's; its default one block)", low=0)
        temperature: float | None = option(None, "llada-* only: Gumbel temperature of the predictions (unset: 0)",
                                           low=0.0)
        cfg_scale: float | None = option(None, "llada-* only: classifier-free guidance scale w (unset: 0, off)",
                                         low=0.0)

    def sample_defaults(self):
        return self.SampleConfig(sampler=self.cfg.sampler)

    def greedy_options(self, length):
        """One token per step, the most confident first, argmax predictions."""
        return self.SampleConfig(length=length, sampler="llada-low-confidence", steps=length, temperature=0.0)

    @torch.no_grad()
    def complete(self, prompt, opts):
        from deepatlas.registry import get

        opts = check_type(opts, self.SampleConfig)
        sampler = opts.sampler or self.cfg.sampler
        refuse_unused(opts, sampler, {"temperature": LLADA_ONLY, "cfg_scale": LLADA_ONLY})
        fn = get("sampler", sampler).obj  # the registered name selects the function
        length = self.length_of(opts)
        steps = opts.steps or self.cfg.steps
        block = opts.block or self.cfg.block_length or length
        if sampler in LLADA_ONLY:
            return fn(lambda z: self.net(z), prompt, length, steps, self.mask_id, block,
                      temperature=opts.temperature or 0.0, cfg_scale=opts.cfg_scale or 0.0)
        x = torch.cat([prompt, prompt.new_full((len(prompt), length), self.mask_id, dtype=torch.long)], 1)
        n_blocks = math.ceil(length / block)
        if steps < n_blocks:
            raise UserError(f"--steps {steps} is fewer than the {n_blocks} blocks of --block {block}; raise --steps")
        P = prompt.shape[1]
        for b in range(n_blocks):
            fixed = torch.ones_like(x, dtype=torch.bool)
            fixed[:, P + b * block: P + (b + 1) * block] = False
            x = fn(self.logp, self.mask_id, x, steps // n_blocks + (b < steps % n_blocks), fixed=fixed)
        return x

    @torch.no_grad()
    def infill(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Fill the positions where `known` is False, one token per step, most confident first (greedy)."""
        x = torch.where(known, x, torch.full_like(x, self.mask_id))
        for _ in range(int((~known).sum(1).max())):
            p, y = self.logp(x).max(-1)
            p = p.masked_fill(x != self.mask_id, -math.inf)
            pick = p.argmax(-1, keepdim=True)
            has = (x == self.mask_id).any(1, keepdim=True)
            x = torch.where(has, x.scatter(1, pick, y.gather(1, pick)), x)
        return x


@register_method("mdlm", "discrete", "masked (absorbing) diffusion LM, MDLM's continuous-time ELBO, ancestral sampling")
class MDLM(MaskedDiffusionLM):
    pass


@register_method("llada", "discrete", "LLaDA-style masked diffusion LM: 1/t masked CE, low-confidence/random "
                 "remasking, semi-AR blocks, CFG, MC likelihood, SFT")
class LLaDA(MaskedDiffusionLM):
    defaults = {"data": {"name": "text"}, "train": TEXT_TRAIN_DEFAULTS,
                "model": {"sampler": "llada-low-confidence", "likelihood": "count"}}
