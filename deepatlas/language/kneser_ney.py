"""Interpolated Kneser-Ney smoothing of n-gram counts (Chen & Goodman 1998, fixed discount D):

    P(w | h) = max(c(h w) - D, 0) / c(h)  +  D * N1+(h .) / c(h) * P(w | h')

where h' drops the oldest token of h. The highest order uses raw counts c; lower orders use continuation
counts c'(h w) = N1+(. h w), the number of distinct tokens seen before h w. The recursion ends in a
uniform distribution over the vocabulary; an unseen history passes the lower order through unchanged.
Each training sequence is padded on the left with n-1 beginning-of-sequence symbols, as at test time.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import torch


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
