"""What every text model shares: its vocabulary, `nll(x)` (exact for AR and n-gram, an ELBO bound for
diffusion), the training loss (nats per token), sampling, and evaluation in bits per character.

Sampling: `sample(n, generator, opts)` continues `opts.prompt` (a string) n times by `opts.length` tokens;
`complete(prompt_ids, opts)` is the same for a batch of token-id prompts (B, P). Each model's
`SampleConfig` extends `TextSampleConfig` with its own options.

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
from deepatlas.sample_options import check_type, global_rng_from


# Training defaults of the Transformer text models (AR, MDLM, LLaDA, SEDD, BD3-LM). 32 sequences of 128
# tokens per step: at 128 sequences a default run (2000 steps) took ~50 minutes on 2 cores; at 32 it takes
# a quarter of that, and after the same CPU time it reached lower bits/char (bench/text_batch.py; bench/RESULTS.md,
# "Text models: the batch at an equal CPU budget"). BD3-LM halves it again: its network reads [x_t ; x0].
TEXT_TRAIN_DEFAULTS = {"lr": 1e-3, "ema_decay": 0.0, "batch_size": 32}


@dataclass
class TransformerConfig:
    d_model: int = option(96, "Transformer width", low=8)
    n_layers: int = option(4, "Transformer blocks", low=1)
    n_heads: int = option(4, "attention heads", low=1)
    eval_samples: int = option(4, "Monte-Carlo draws per test sequence for a likelihood bound", low=1)


@dataclass
class TextSampleConfig:
    prompt: str = option("", "text to continue (default: none)")
    length: int = option(0, "tokens to generate (0: the run's sequence length)", low=0)


class LanguageModel(Method):
    datasets = TEXT_DATASETS
    is_bound = False  # True where nll() is a (stochastic) upper bound rather than the exact NLL
    can_infill = False  # True where infill() fills masked positions anywhere in a sequence (masked diffusion)

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

    SampleConfig = TextSampleConfig

    def complete(self, prompt: torch.Tensor, opts) -> torch.Tensor:
        """prompt ids (B, P) -> (B, P + length) with this model's sampler and options."""
        raise NotImplementedError

    def infill(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """x (B, L) ids, known (B, L) bool -> x with the positions where `known` is False filled in (greedy).
        Only models with `can_infill`; a left-to-right model can only continue a prompt."""
        raise NotImplementedError(f"{type(self).__name__} cannot infill (can_infill is False)")

    def encode_prompt(self, text: str, n: int) -> torch.Tensor:
        return self.tokenizer.encode(text)[None].expand(n, -1).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, opts=None) -> torch.Tensor:
        """(n, P + length) token ids continuing opts.prompt; the draws are seeded from `generator`."""
        opts = check_type(opts, self.SampleConfig)
        was = self.training
        self.eval()
        try:
            with global_rng_from(generator, self.device):
                return self.complete(self.encode_prompt(opts.prompt, n), opts)
        finally:
            self.train(was)

    def greedy_options(self, length: int):
        """The options of deterministic decoding of `length` tokens (the reversal task's answers)."""
        return self.SampleConfig(length=length)

    def length_of(self, opts) -> int:
        return opts.length or self.seq_len

    def loss(self, batch):
        nats = self.nll(batch["x"])
        per_token = nats.mean() / batch["x"].shape[1]
        return {"loss": per_token, "bits_per_token": per_token.detach() / math.log(2)}

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator=None, opts=None, folder=None) -> dict:
        """Bits per character on n test sequences (reversal: accuracy); Monte-Carlo draws seeded from `generator`."""
        with global_rng_from(generator, self.device):
            return self._evaluate(dataset, n)

    def _evaluate(self, dataset, n: int) -> dict:
        if self.info.extra.get("task") == "reversal":
            from deepatlas.language.reversal import reversal_accuracy

            return reversal_accuracy(self, dataset)
        x = dataset.test["x"][:n]
        draws = self.cfg.eval_samples if self.is_bound else 1  # a bound model's Config is a TransformerConfig
        total = 0.0
        for xb in x.split(64):
            total += sum(float(self.nll(xb).double().sum()) for _ in range(draws)) / draws
        tokens = x.numel()
        chars = tokens * self.info.extra.get("chars_per_token", 1.0)
        return {"bits_per_char": total / chars / math.log(2), "bits_per_token": total / tokens / math.log(2),
                "perplexity_token": math.exp(total / tokens), "test_sequences": len(x), "bound": self.is_bound}

    def default_prompt(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 0, dtype=torch.long, device=self.device)

    def write_text(self, rows: torch.Tensor, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n-----\n\n".join(self.tokenizer.decode(row) for row in rows), encoding="utf-8")
        return path

    @torch.no_grad()
    def write_samples(self, folder: Path, step: int) -> list[Path]:
        opts = self.SampleConfig(length=min(self.seq_len, 128))
        return [self.write_text(self.sample(2, None, opts), Path(folder) / f"step_{step:07d}.txt")]

    def sample_files(self, n: int, generator, opts, out: Path) -> tuple[torch.Tensor, list[Path]]:
        """The continuations as text, `out` with the suffix .txt."""
        rows = self.sample(n, generator, opts)
        return rows, [self.write_text(rows, Path(out).with_suffix(".txt"))]
