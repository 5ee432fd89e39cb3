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
    from deepatlas.discrete.masked_diffusion_lm import LLaDA

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


def test_infill_is_a_declared_capability():
    """`can_infill` says which text models fill masked positions anywhere: those fill exactly the unknown
    positions (the rest stay as given), the others refuse, and the reversal task reports infilling only
    for the first."""
    import torch

    from deepatlas import registry
    from deepatlas.data.base import DataConfig, load_dataset
    from deepatlas.language.language_model import LanguageModel
    from deepatlas.language.reversal import reversal_accuracy

    d = load_dataset(DataConfig(name="reversal", size=16))
    kinds = {}
    for name, e in registry.table("method").items():
        if not issubclass(e.obj, LanguageModel):
            continue
        cfg = e.obj.Config(order=2) if name == "ngram" else e.obj.Config(d_model=16, n_layers=1, n_heads=2)
        m = e.obj(cfg, d.info).eval()
        kinds[name] = m.can_infill
        x = d.test["x"][:3]
        known = torch.ones_like(x, dtype=torch.bool)
        known[:, 2:5] = False
        if m.can_infill:
            y = m.infill(x, known)
            assert torch.equal(y[known], x[known]) and (y[~known] < m.vocab).all()
        else:
            with pytest.raises(NotImplementedError):
                m.infill(x, known)
        assert ("infill_reverse_accuracy" in reversal_accuracy(m, d, limit=4)) == m.can_infill
    assert kinds["mdlm"] and kinds["llada"] and not kinds["ar"] and not kinds["bd3lm"] and len(kinds) == 7
