"""The autoregressive Transformer LM: -log p(x) = sum_l -log p(x^l | x^{<l}), with a beginning-of-sequence
token in front so the first token is predicted too (the same quantity the diffusion models bound).
Generation appends one token at a time, reusing the keys/values of earlier tokens (KV cache).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepatlas.config import option
from deepatlas.language.language_model import TEXT_TRAIN_DEFAULTS, LanguageModel, TextSampleConfig, TransformerConfig
from deepatlas.language.sampling import sample_next
from deepatlas.nn.transformer import Transformer
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type


@register_method("ar", "language", "autoregressive Transformer LM (causal attention, KV-cached generation)")
class AutoregressiveLM(LanguageModel):
    @dataclass
    class Config(TransformerConfig):
        temperature: float = option(1.0, "default sampling temperature (0: greedy)", low=0.0)
        top_k: int = option(0, "default top-k truncation (0: off)", low=0)
        top_p: float = option(1.0, "default top-p (nucleus) truncation (1: off)", low=0.0, high=1.0)

    defaults = {"data": {"name": "text"}, "train": TEXT_TRAIN_DEFAULTS}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        self.bos = self.vocab
        self.net = Transformer(self.vocab + 1, self.vocab, cfg.d_model, cfg.n_layers, cfg.n_heads)

    def _with_bos(self, x):
        return torch.cat([torch.full((len(x), 1), self.bos, dtype=x.dtype, device=x.device), x], 1)

    def nll(self, x):
        logits = self.net(self._with_bos(x)[:, :-1], mask="causal")
        return F.cross_entropy(logits.transpose(1, 2), x, reduction="none").sum(-1)

    @dataclass
    class SampleConfig(TextSampleConfig):
        temperature: float | None = option(None, "sampling temperature, 0: greedy (unset: the run's)", low=0.0)
        top_k: int | None = option(None, "keep the k most likely tokens, 0: all (unset: the run's)", low=0)
        top_p: float | None = option(None, "nucleus: keep the most likely tokens up to mass p (unset: the run's)",
                                     low=0.0, high=1.0)
        use_cache: bool = option(True, "reuse keys/values of earlier tokens (the KV cache)")

    def greedy_options(self, length):
        return self.SampleConfig(length=length, temperature=0.0)

    @torch.no_grad()
    def complete(self, prompt, opts):
        opts = check_type(opts, self.SampleConfig)
        temperature = self.cfg.temperature if opts.temperature is None else opts.temperature
        top_k = self.cfg.top_k if opts.top_k is None else opts.top_k
        top_p = self.cfg.top_p if opts.top_p is None else opts.top_p
        length, use_cache = self.length_of(opts), opts.use_cache
        x = self._with_bos(prompt)
        cache = self.net.new_cache() if use_cache else None
        new = x
        for _ in range(length):
            if use_cache:
                logits = self.net(new, mask="causal", cache=cache, store=True)[:, -1]
            else:
                logits = self.net(x, mask="causal")[:, -1]
            new = sample_next(logits, temperature, top_k, top_p)[:, None]
            x = torch.cat([x, new], 1)
        return x[:, 1:]
