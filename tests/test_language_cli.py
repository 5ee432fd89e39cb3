"""Every text method trains through the shared trainer, evaluates in bits per character and generates
from the CLI."""

import json

import pytest

from deepatlas.cli import main

SMALL = ["--data", "text", "--data-seq-len", "32", "--data-size", "64", "--train-steps", "2", "--train-batch-size", "8",
         "--no-progress"]
NET = ["--model-d-model", "16", "--model-n-layers", "1", "--model-n-heads", "2"]


@pytest.mark.parametrize("method", ["ar", "mdlm", "llada", "sedd-absorb", "sedd-uniform", "bd3lm", "ngram"])
def test_train_eval_generate(method, tmp_path, capsys):
    run = tmp_path / method
    extra = ["--model-order", "3"] if method == "ngram" else NET
    assert main(["train", method, "--out", str(run), *SMALL, *extra]) == 0
    assert main(["eval", str(run), "--n", "4"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert 0 < result["bits_per_char"] < 20
    capsys.readouterr()
    steps = [] if method in ("ar", "ngram") else ["--steps", "4"]  # AR and n-gram decode one token a step
    assert main(["generate", str(run), "--prompt", "The ", "--length", "8", *steps]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The ") and len(out.rstrip("\n")) >= 12


def test_generate_errors(tmp_path, capsys):
    run = tmp_path / "m"
    assert main(["train", "mdlm", "--out", str(run), *SMALL, *NET]) == 0
    assert main(["generate", str(run), "--prompt", "\u4e2d", "--length", "4"]) == 2
    assert "not in the training vocabulary" in capsys.readouterr().err
    assert main(["generate", str(run), "--length", "8", "--steps", "1", "--block", "2"]) == 2
    assert main(["generate", str(tmp_path / "none")]) == 2


def test_sft_never_masks_the_prompt():
    import torch

    from deepatlas.data.base import DataConfig, load_dataset
    from deepatlas.discrete.mdlm import LLaDA

    d = load_dataset(DataConfig(name="reversal", variant="sft", size=32))
    m = LLaDA(LLaDA.Config(d_model=16, n_layers=1, n_heads=2), d.info)
    seen = []
    m.logp = lambda xt: seen.append(xt) or torch.zeros(*xt.shape, m.vocab).log_softmax(-1)  # uniform denoiser
    batch = d.train.get(torch.arange(32))
    for likelihood in ("count", "time"):
        m.cfg.likelihood = likelihood
        for _ in range(20):
            out = m.loss(batch)
    p = int(batch["prompt_len"][0])
    xs = torch.cat(seen)
    assert (xs[:, :p] != m.mask_id).all() and (xs[:, p:] == m.mask_id).any()
    assert out["loss"] > 0
