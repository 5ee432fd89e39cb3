"""Text data: splits never overlap, bad files give one-line errors, BPE round-trips, the reversal task."""

import pytest
import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.data.text import default_corpus, split_text
from deepatlas.errors import UserError


def test_splits_partition_the_corpus_into_disjoint_chunks():
    text = "".join(chr(65 + i % 26) + str(i) for i in range(5000))  # every chunk is distinct
    train, val, test = split_text(text, seed=0, chunk=100)
    assert len(train) + len(val) + len(test) == len(text)
    chunks = lambda s: {s[i:i + 100] for i in range(0, len(s), 100)}  # noqa: E731
    a, b, c = chunks(train), chunks(val), chunks(test)
    assert not (a & b or a & c or b & c)
    assert a | b | c == chunks(text)
    assert len(val) > 0 and len(test) > 0 and len(train) > 0.85 * len(text)


def test_default_corpus_dataset():
    d = load_dataset(DataConfig(name="text", seq_len=64))
    assert d.train["x"].shape[1] == 64 and d.train["x"].dtype == torch.int64
    assert int(d.train["x"].max()) < d.info.extra["vocab_size"]
    assert len(d.train) > 10 * len(d.test) and len(d.val) > 0
    assert len(default_corpus()) > 400_000


def test_bad_files_are_user_errors(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 ".encode("latin-1") * 10)
    with pytest.raises(UserError, match="not UTF-8"):
        load_dataset(DataConfig(name="text", path=str(bad)))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("  \n")
    with pytest.raises(UserError, match="no text"):
        load_dataset(DataConfig(name="text", path=str(empty)))
    with pytest.raises(UserError, match="no such file"):
        load_dataset(DataConfig(name="text", path=str(tmp_path / "missing")))


def test_folder_and_bpe(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(default_corpus()[i * 20000:(i + 1) * 20000], encoding="utf-8")
    d = load_dataset(DataConfig(name="text", path=str(tmp_path), tokenizer="bpe", vocab_size=300, seq_len=32))
    tok = d.info.extra["tokenizer"]
    assert tok.vocab_size <= 300
    s = "def f(x):\n    return x + 1  # ok"
    assert tok.decode(tok.encode(s)) == s
    assert d.info.extra["chars_per_token"] > 1.2  # BPE merges characters


def test_reversal_facts():
    d = load_dataset(DataConfig(name="reversal", size=50))
    tok = d.info.extra["tokenizer"]
    facts = [tok.decode(r) for r in d.train["x"]]
    pairs = d.info.extra["pairs"]
    assert facts[0] == f"{pairs[0][0]} is {pairs[0][1]}."
    names = [n for p in pairs for n in p]
    assert len(set(names)) == len(names) == 100
