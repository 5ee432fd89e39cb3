"""BD3-LM: block diffusion (`block_diffusion.py`) as a trainable method: a Transformer trained on the
doubled sequence with one noise level per block, sampled block by block with the KV cache.

The default Monte-Carlo estimator draws the number of masked tokens per block (LLaDA's estimator, same
expectation as drawing t, lower variance: at block 1 it is the AR loss exactly). BD3-LM's paper reduces
the variance differently, with clipped noise schedules; `--model-likelihood time` is the plain t draw."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepatlas.config import option
from deepatlas.discrete.block_diffusion import bd3_logits, bd3_sample, block_count_mask, block_times
from deepatlas.discrete.masked_diffusion import mask_tokens, masked_nelbo
from deepatlas.language.language_model import TEXT_TRAIN_DEFAULTS, LanguageModel, TextSampleConfig, TransformerConfig
from deepatlas.nn.transformer import Transformer
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type


@register_method("bd3lm", "discrete", "block diffusion LM (BD3-LM): block-causal doubled-sequence training, "
                 "block-by-block sampling with a KV cache")
class BD3LM(LanguageModel):
    is_bound = True

    @dataclass
    class Config(TransformerConfig):
        block: int = option(4, "tokens per block (1: autoregressive, sequence length: masked diffusion)", low=1)
        steps: int = option(0, "default denoising steps per block (0: the block size)", low=0)
        t_min: float = option(1e-3, "smallest time drawn in training (--model-likelihood time)", low=0.0, high=0.5)
        likelihood: str = option("count", "Monte-Carlo bound per block: count (draw the number masked, lower "
                                 "variance) | time (draw t)", choices=("count", "time"))

    # 16 sequences a step: the network reads each one twice ([x_t ; x0]), so the step sends as many tokens
    # through it as the other text models' 32, and a default run takes their time (bench/text_batch.py)
    defaults = {"data": {"name": "text"}, "train": {**TEXT_TRAIN_DEFAULTS, "batch_size": 16}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.mask_id = self.vocab
        self.net = Transformer(self.vocab + 1, self.vocab, cfg.d_model, cfg.n_layers, cfg.n_heads)

    def nll(self, x):
        if self.cfg.likelihood == "count":
            xt, t = block_count_mask(x, self.cfg.block, self.mask_id)
            scale = 1.0
        else:
            t = block_times(len(x), x.shape[1], self.cfg.block, self.cfg.t_min, x.device)
            xt, scale = mask_tokens(x, t, self.mask_id), 1 - self.cfg.t_min
        logp = bd3_logits(self.net, xt, x, self.cfg.block).log_softmax(-1)
        return masked_nelbo(logp, x, xt, t, self.mask_id) * scale

    @dataclass
    class SampleConfig(TextSampleConfig):
        steps: int = option(0, "denoising steps per block (0: the run's, else the block size)", low=0)
        use_cache: bool = option(True, "keep the keys/values of finished blocks (the KV cache)")

    def greedy_options(self, length):
        return self.SampleConfig(length=length, steps=length)

    @torch.no_grad()
    def complete(self, prompt, opts):
        """Blocks of cfg.block tokens (fixed by training), each denoised in `steps` steps."""
        opts = check_type(opts, self.SampleConfig)
        steps = opts.steps or self.cfg.steps or self.cfg.block
        return bd3_sample(self.net, prompt, self.length_of(opts), self.cfg.block, steps, self.mask_id,
                          use_cache=opts.use_cache)
