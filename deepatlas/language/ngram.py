"""n-gram LM: the probabilities of interpolated Kneser-Ney smoothing (`language/kneser_ney.py`) as a method.

"Training" is a count pass, done when the model is built: the counts are a deterministic function of
the training split (read from `info.extra["train_tokens"]`), so they are not stored in the checkpoint
and a run directory rebuilds them. `loss` reports the NLL of the batch under the counts (a metric: the
one dummy parameter gets zero gradient), so `deepatlas train ngram` works with the shared trainer;
its default is one step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from deepatlas.config import option
from deepatlas.errors import UserError
from deepatlas.language.kneser_ney import KneserNey
from deepatlas.language.language_model import LanguageModel, TextSampleConfig
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type


@register_method("ngram", "language", "n-gram LM with interpolated Kneser-Ney smoothing (a count pass; exact NLL)")
class NGramLM(LanguageModel):
    @dataclass
    class Config:
        order: int = option(5, "n: tokens per n-gram (history of n-1)", low=1, high=12)
        discount: float = option(0.75, "Kneser-Ney absolute discount D", low=0.0, high=1.0)

    defaults = {"data": {"name": "text"}, "train": {"steps": 1, "ema_decay": 0.0, "warmup": 0}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        train = info.extra.get("train_tokens")
        if train is None:
            raise UserError("the n-gram model needs a text dataset that exposes its training tokens (--data text or reversal)")
        self.kn = KneserNey(train.tolist(), cfg.order, self.vocab, cfg.discount)
        self.dummy = nn.Parameter(torch.zeros(()))  # the trainer needs a parameter; the counts are not learned

    def _history(self, row: list[int], i: int) -> tuple:
        s = [self.kn.bos] * (self.cfg.order - 1) + row[:i]
        return tuple(s[len(s) - self.cfg.order + 1:]) if self.cfg.order > 1 else ()

    def nll(self, x):
        out = []
        for row in x.tolist():
            out.append(-sum(math.log(self.kn.prob(w, self._history(row, i))) for i, w in enumerate(row)))
        return torch.tensor(out, dtype=torch.float64, device=x.device) + 0 * self.dummy

    @dataclass
    class SampleConfig(TextSampleConfig):
        temperature: float = option(1.0, "sampling temperature: p^(1/T) renormalised, 0: greedy", low=0.0)

    def greedy_options(self, length):
        return self.SampleConfig(length=length, temperature=0.0)

    @torch.no_grad()
    def complete(self, prompt, opts):
        opts = check_type(opts, self.SampleConfig)
        length, temperature = self.length_of(opts), opts.temperature
        rows = []
        for row in prompt.tolist():
            for _ in range(length):
                p = self.kn.dist(self._history(row, len(row)))
                if temperature and temperature > 0:
                    p = p ** (1 / temperature)
                    row.append(int(torch.multinomial(p / p.sum(), 1)))
                else:
                    row.append(int(p.argmax()))
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long, device=prompt.device).view(len(prompt), -1)
