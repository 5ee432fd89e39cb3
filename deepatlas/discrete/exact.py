"""Exact denoisers and concrete scores of a small, fully enumerated data distribution: the oracles the
samplers and losses are checked against (tiny vocabulary and length only).

`seqs` (C, L) are all sequences with probability `probs` (C,). The forward process acts on each token
independently, so p_t(x) = sum_c probs[c] prod_l q_t(x^l | seqs[c, l]).
"""

from __future__ import annotations

import itertools

import torch

from deepatlas.discrete.processes import Process


class ExactDistribution:
    def __init__(self, probs: torch.Tensor, vocab: int, length: int):
        self.seqs = torch.tensor(list(itertools.product(range(vocab), repeat=length)))  # (C, L)
        self.probs = probs.double() / probs.sum()
        self.vocab, self.length = vocab, length

    @classmethod
    def random(cls, vocab: int, length: int, seed: int = 0, concentration: float = 0.5) -> "ExactDistribution":
        gamma = torch.distributions.Gamma(concentration, 1.0)
        torch.manual_seed(seed)
        return cls(gamma.sample((vocab ** length,)).double() + 1e-3, vocab, length)

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Row index of each sequence of x (B, L) in `seqs`."""
        powers = self.vocab ** torch.arange(self.length - 1, -1, -1)
        return (x * powers).sum(-1)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        return -self.probs[self.index(x)].log()

    def logp_x0(self, xt: torch.Tensor, mask_id: int) -> torch.Tensor:
        """log p(x0^l = y | x_t) for the absorbing process (B, L, V): the data conditioned on the unmasked tokens."""
        ok = ((self.seqs[None] == xt[:, None]) | (xt[:, None] == mask_id)).all(-1)  # (B, C)
        w = self.probs[None] * ok
        onehot = torch.nn.functional.one_hot(self.seqs, self.vocab).double()  # (C, L, V)
        p = torch.einsum("bc,clv->blv", w, onehot)
        return (p / p.sum(-1, keepdim=True)).log()

    def log_score(self, xt: torch.Tensor, t: torch.Tensor, process: Process) -> torch.Tensor:
        """log p_t(x_t with x^l := y) / p_t(x_t) for every l, y (B, L, K)."""
        P = process.transition(process.sigma_bar(t.double()))  # (B, K, K)
        b = torch.arange(len(xt))[:, None, None]
        A = P[b, self.seqs[None], xt[:, None]]  # (B, C, L): q_t(x_t^l | seqs[c, l])
        px = (self.probs[None] * A.prod(-1)).sum(-1)  # (B,)
        out = []
        for l in range(self.length):
            others = torch.cat([A[..., :l], A[..., l + 1:]], -1).prod(-1)  # (B, C)
            to_y = P[b[..., 0], self.seqs[None, :, l]]  # (B, C, K): q_t(y | seqs[c, l])
            out.append(torch.einsum("bc,bck->bk", self.probs[None] * others, to_y))
        return (torch.stack(out, 1) / px[:, None, None]).log()

    def tv(self, samples: torch.Tensor) -> float:
        """Total-variation distance between the empirical distribution of samples (N, L) and the data."""
        counts = torch.bincount(self.index(samples), minlength=len(self.probs)).double()
        return 0.5 * float((counts / counts.sum() - self.probs).abs().sum())
