"""n-gram LM with interpolated Kneser-Ney smoothing (Chen & Goodman 1998, fixed discount D):

    P(w | h) = max(c(h w) - D, 0) / c(h)  +  D * N1+(h .) / c(h) * P(w | h')

where h' drops the oldest token of h. The highest order uses raw counts c; lower orders use continuation
counts c'(h w) = N1+(. h w), the number of distinct tokens seen before h w. The recursion ends in a
uniform distribution over the vocabulary; an unseen history passes the lower order through unchanged.
Each training sequence is padded on the left with n-1 beginning-of-sequence symbols, as at test time.

"Training" is a count pass, done when the model is built: the counts are a deterministic function of
the training split (read from `info.extra["train_tokens"]`), so they are not stored in the checkpoint
and a run directory rebuilds them. `loss` reports the NLL of the batch under the counts (a metric: the
one dummy parameter gets zero gradient), so `deepatlas train ngram` works with the shared trainer;
its default is one step.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import torch
from torch import nn

from deepatlas.config import option
from deepatlas.errors import UserError
from deepatlas.language.lm import LanguageModel, TextSampleConfig
from deepatlas.registry import register_method
from deepatlas.sample_options import check_type


class KneserNey:
    """Counts of one corpus; `prob(w, h)` and `dist(h)` (a list over the vocabulary)."""

    def __init__(self, sequences: list[list[int]], order: int, vocab: int, discount: float = 0.75,
                 unigram_discount: float | None = None):
        """`unigram_discount` (default: `discount`) = 0 reproduces nltk's KneserNeyInterpolated, whose
        unigram level is the undiscounted continuation distribution."""
        self.n, self.V, self.D, self.bos = order, vocab, discount, vocab
        self.D1 = discount if unigram_discount is None else unigram_discount
        grams = Counter()
        for seq in sequences:
            s = [self.bos] * (order - 1) + list(seq)
            for i in range(order - 1, len(s)):
                grams[tuple(s[i - order + 1: i + 1])] += 1
        # counts[k][h][w]: raw counts for k = n, continuation counts for k < n (k = len(h) + 1)
        self.counts: dict[int, dict[tuple, Counter]] = {k: defaultdict(Counter) for k in range(1, order + 1)}
        for g, c in grams.items():
            self.counts[order][g[:-1]][g[-1]] += c
        for k in range(order - 1, 0, -1):
            for h, ws in self.counts[k + 1].items():
                for w in ws:
                    self.counts[k][h[1:]][w] += 1  # one more distinct left extension of h[1:] w
        self.totals = {k: {h: (sum(ws.values()), len(ws)) for h, ws in self.counts[k].items()} for k in self.counts}

    def _levels(self, h: tuple):
        """(context, count, distinct followers, discount) for each order 1..n whose context was seen,
        from the lowest order up: the interpolation walks them in this order."""
        for k in range(1, self.n + 1):
            ctx = tuple(h[len(h) - k + 1:]) if k > 1 else ()
            tot = self.totals[k].get(ctx)
            if tot is not None:
                yield k, ctx, tot[0], tot[1], self.D if k > 1 else self.D1

    def prob(self, w: int, h: tuple) -> float:
        p = 1.0 / self.V
        for k, ctx, c, types, D in self._levels(h):
            p = max(self.counts[k][ctx].get(w, 0) - D, 0) / c + D * types / c * p
        return p

    def dist(self, h: tuple) -> torch.Tensor:
        p = torch.full((self.V,), 1.0 / self.V, dtype=torch.float64)
        for k, ctx, c, types, D in self._levels(h):
            seen = torch.zeros(self.V, dtype=torch.float64)
            for w, cw in self.counts[k][ctx].items():
                seen[w] = max(cw - D, 0)
            p = seen / c + D * types / c * p
        return p


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
