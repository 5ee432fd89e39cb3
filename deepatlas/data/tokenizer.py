"""Text tokenizers: characters (default) or byte-pair encoding trained locally with `tokenizers`.

Both map a string to int64 ids in [0, vocab_size) and back. Token ids >= vocab_size are reserved
by the models for their own special tokens (mask, beginning of sequence).
"""

from __future__ import annotations

import torch

from deepatlas.errors import UserError


class CharTokenizer:
    """One id per distinct character of the corpus it was built from (sorted, so ids are stable)."""

    kind = "char"

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        bad = sorted({c for c in text if c not in self.index})
        if bad:
            raise UserError(f"characters {''.join(bad)!r} are not in the training vocabulary; use characters of the corpus")
        return torch.tensor([self.index[c] for c in text], dtype=torch.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[i] if 0 <= i < len(self.chars) else "□" for i in _ints(ids))


class BPETokenizer:
    """Byte-level BPE trained on the given text with the `tokenizers` library (no download)."""

    kind = "bpe"

    def __init__(self, text: str, vocab_size: int):
        try:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        except ImportError:
            raise UserError("--data-tokenizer bpe needs the `tokenizers` package: pip install tokenizers") from None
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(_lines(text), trainer)
        self.tok = tok

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tok.encode(text).ids, dtype=torch.int64)

    def decode(self, ids) -> str:
        return self.tok.decode([i for i in _ints(ids) if 0 <= i < self.vocab_size])


def _lines(text: str, size: int = 4096):
    for i in range(0, len(text), size):
        yield text[i:i + size]


def _ints(ids) -> list[int]:
    return ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
