"""What every text model shares: its vocabulary, `nll(x)` (exact for AR and n-gram, an ELBO bound for
diffusion), the training loss (nats per token), `generate`, and evaluation in bits per character.

Bits per character = total nats / (number of characters * ln 2); with characters as tokens it is bits
per token, with BPE the test split's characters-per-token ratio converts it. Diffusion models report a
Monte-Carlo estimate of their bound (`eval_samples` draws per sequence), so their figure is an upper
bound on their true bits per character, up to the estimate's noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from deepatlas.config import option
from deepatlas.data.base import TEXT_DATASETS
from deepatlas.errors import UserError
from deepatlas.method import Method


@dataclass
class TransformerConfig:
    d_model: int = option(96, "Transformer width", low=8)
    n_layers: int = option(4, "Transformer blocks", low=1)
    n_heads: int = option(4, "attention heads", low=1)
    eval_samples: int = option(4, "Monte-Carlo draws per test sequence for a likelihood bound", low=1)


class LanguageModel(Method):
    datasets = TEXT_DATASETS
    is_bound = False  # True where nll() is a (stochastic) upper bound rather than the exact NLL

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        if info.kind != "text":
            raise UserError(f"{type(self).__name__} models text, not {info.kind}; use --data text or --data reversal")
        self.vocab = info.extra["vocab_size"]  # N real tokens
        self.seq_len = info.shape[0]

    @property
    def tokenizer(self):
        return self.info.extra["tokenizer"]

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log p(x) in nats per sequence (B,), or a one-draw estimate of an upper bound."""
        raise NotImplementedError

    def generate(self, prompt: torch.Tensor, length: int, **opts) -> torch.Tensor:
        """prompt (B, P) -> (B, P + length)."""
        raise NotImplementedError

    def loss(self, batch):
        nats = self.nll(batch["x"])
        per_token = nats.mean() / batch["x"].shape[1]
        return {"loss": per_token, "bits_per_token": per_token.detach() / math.log(2)}

    @torch.no_grad()
    def evaluate(self, dataset, n: int) -> dict:
        if self.info.extra.get("task") == "reversal":
            from deepatlas.language.reversal import reversal_accuracy

            return reversal_accuracy(self, dataset)
        x = dataset.test["x"][:n]
        draws = self.cfg.eval_samples if self.is_bound and hasattr(self.cfg, "eval_samples") else 1
        total = 0.0
        for xb in x.split(64):
            total += sum(float(self.nll(xb).double().sum()) for _ in range(draws)) / draws
        tokens = x.numel()
        chars = tokens * self.info.extra.get("chars_per_token", 1.0)
        return {"bits_per_char": total / chars / math.log(2), "bits_per_token": total / tokens / math.log(2),
                "perplexity_token": math.exp(total / tokens), "test_sequences": len(x), "bound": self.is_bound}

    def default_prompt(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 0, dtype=torch.long, device=self.device)

    @torch.no_grad()
    def write_samples(self, folder: Path, step: int) -> list[Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = self.generate(self.default_prompt(2), min(self.seq_len, 128))
        path = folder / f"step_{step:07d}.txt"
        path.write_text("\n\n-----\n\n".join(self.tokenizer.decode(row) for row in out), encoding="utf-8")
        return [path]

    def sample_cli(self, out_path: Path, n: int, seed: int, **opts) -> Path:
        torch.manual_seed(seed)
        out_path = Path(out_path).with_suffix(".txt")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        keep = {k: v for k, v in opts.items() if k == "steps"}
        rows = self.generate(self.default_prompt(n), self.seq_len, **keep)
        out_path.write_text("\n\n-----\n\n".join(self.tokenizer.decode(r) for r in rows), encoding="utf-8")
        return out_path
