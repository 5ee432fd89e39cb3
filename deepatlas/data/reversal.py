"""The key-value reversal task: train on facts "A is B." and ask both "A is ?" (forward) and "? is B"
(reverse). Autoregressive models trained only in the forward direction fail the reverse question (the
"reversal curse"); a masked-diffusion LM, trained to fill any subset of positions, can answer it by
infilling the first name given the second.

Names are `NAME_LEN` random lowercase letters, all distinct; a fact is `f"{A} is {B}."` (13 characters
with the default length). The test split holds the same facts: the task measures recall of trained
facts in each direction, not generalisation. `--data-variant sft` adds `prompt_len` to the training
split ("A is " is the prompt, "B." the response) for supervised fine-tuning of masked diffusion LMs.
"""

from __future__ import annotations

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.data.tokenizer import CharTokenizer
from deepatlas.errors import UserError
from deepatlas.registry import register_dataset

NAME_LEN = 4
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
DEFAULT_PAIRS = 400


def facts(n: int, seed: int) -> list[tuple[str, str]]:
    g = torch.Generator().manual_seed(seed)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < 2 * n:
        s = "".join(ALPHABET[i] for i in torch.randint(0, 26, (NAME_LEN,), generator=g).tolist())
        if s not in seen:
            seen.add(s)
            names.append(s)
    return list(zip(names[:n], names[n:]))


@register_dataset("reversal", "data", "synthetic key-value facts 'A is B.' (char tokens); asks A->B and B->A",
                  fields=("variant", "size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    pairs = facts(cfg.size or DEFAULT_PAIRS, cfg.seed)
    tok = CharTokenizer(ALPHABET + " .")
    x = torch.stack([tok.encode(f"{a} is {b}.") for a, b in pairs])
    info = DataInfo("text", tuple(x.shape[1:]), 0, {
        "vocab_size": tok.vocab_size, "tokenizer": tok, "chars_per_token": 1.0, "task": "reversal",
        "pairs": pairs, "name_len": NAME_LEN, "train_tokens": x,
    })
    if cfg.variant not in ("", "sft"):
        raise UserError(f"--data-variant for reversal is '' or sft, got {cfg.variant!r}")
    train = TensorData(x=x)
    if cfg.variant == "sft":  # prompt/response pairs: "A is " is the prompt, "B." the response
        train = TensorData(x=x, prompt_len=torch.full((len(x),), NAME_LEN + 4))
    return Dataset("reversal", info, train, TensorData(x=x.clone()))
