"""A text corpus as fixed-length token sequences with train / validation / test splits that never overlap.

Default corpus: Python's own help text (`pydoc_data.topics`, ~0.46 M characters, on every Python).
`--data-path` reads any UTF-8 file, or every file of a folder (sorted, recursively).

Splitting: the characters are cut into contiguous chunks of `CHUNK` characters; a seeded permutation
sends 90% of the chunks to train, 5% to validation and 5% to test. Each split's text is tokenised on
its own and cut into non-overlapping windows of `seq_len` tokens, so no character is in two splits.
The character vocabulary is the character set of the whole corpus (no unknown tokens at test time);
BPE is trained on the train split only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.data.tokenizer import BPETokenizer, CharTokenizer
from deepatlas.errors import UserError
from deepatlas.registry import register_dataset

CHUNK = 2048
FRACTIONS = (0.9, 0.05, 0.05)


def default_corpus() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def read_corpus(path: str) -> str:
    """Read a UTF-8 file, or every file under a folder (sorted), as one string."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"--data-path {path}: no such file or folder")
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    parts = []
    for f in files:
        try:
            parts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise UserError(f"{f} is not UTF-8 text (byte {e.start}); convert it or point --data-path elsewhere") from None
    text = "\n\n".join(parts)
    if not text.strip():
        raise UserError(f"--data-path {path} holds no text; give a non-empty UTF-8 file or folder")
    return text


def split_text(text: str, seed: int, chunk: int = CHUNK) -> tuple[str, str, str]:
    """Contiguous chunks of `chunk` characters, assigned 90/5/5 to train/val/test by a seeded permutation."""
    chunks = [text[i:i + chunk] for i in range(0, len(text), chunk)]
    if len(chunks) < 3:
        chunk = max(1, len(text) // 20)
        chunks = [text[i:i + chunk] for i in range(0, len(text), chunk)]
    perm = torch.randperm(len(chunks), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(chunks) * FRACTIONS[1]))
    n_test = max(1, round(len(chunks) * FRACTIONS[2]))
    test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    join = lambda idx: "".join(chunks[i] for i in sorted(idx))  # noqa: E731  (keep text order)
    return join(train), join(val), join(test)


def windows(ids: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Non-overlapping windows (N, seq_len); the ragged tail is dropped."""
    n = len(ids) // seq_len
    return ids[: n * seq_len].view(n, seq_len)


@register_dataset("text", "data", "a text corpus (default: Python's help text; --data-path any UTF-8 file/folder), "
                  "char or BPE tokens, 90/5/5 contiguous-chunk splits",
                  fields=("path", "seq_len", "tokenizer", "vocab_size", "size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    text = read_corpus(cfg.path) if cfg.path else default_corpus()
    train_text, val_text, test_text = split_text(text, cfg.seed)
    tok = CharTokenizer(text) if cfg.tokenizer == "char" else BPETokenizer(train_text, cfg.vocab_size)
    splits = {}
    for name, part in (("train", train_text), ("val", val_text), ("test", test_text)):
        ids = tok.encode(part)
        x = windows(ids, cfg.seq_len)
        if len(x) == 0:
            raise UserError(f"the {name} split has {len(ids)} tokens, fewer than --data-seq-len {cfg.seq_len}; "
                            "use a longer corpus or a shorter --data-seq-len")
        splits[name] = TensorData(x=x)
        splits[name + "_chars_per_token"] = len(part) / max(1, len(ids))
    if cfg.size:
        splits["train"] = TensorData(x=splits["train"]["x"][: cfg.size])
    info = DataInfo("text", (cfg.seq_len,), 0, {
        "vocab_size": tok.vocab_size, "tokenizer": tok,
        "chars_per_token": splits["test_chars_per_token"], "train_tokens": splits["train"]["x"],
    })
    return Dataset("text", info, splits["train"], splits["test"], val=splits["val"])
