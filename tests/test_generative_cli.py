"""Every generative method trains, evaluates and samples from the command line (a few steps each)."""

import json

import pytest

from deepatlas.cli import main

CASES = {
    "gan": ["--data", "toy2d", "--data-variant", "gaussians8"],
    "gan-wgan-dcgan": ["--data", "digits", "--model-loss", "wgan-gp", "--model-n-critic", "2", "--model-width", "8"],
    "vae": ["--data", "digits", "--data-binarize", "--model-eval-k", "20"],
    "vae-gauss": ["--data", "toy2d", "--model-eval-k", "20", "--model-k", "3"],
    "planar": ["--data", "toy2d"],
    "realnvp": ["--data", "digits", "--model-hidden", "8", "--model-steps", "1"],
    "vae-grey": ["--data", "digits", "--no-data-binarize", "--model-eval-k", "20"],
    "glow": ["--data", "digits", "--model-hidden", "8", "--model-steps", "1"],
    "maf": ["--data", "toy2d"],
    "fvsbn": ["--data", "digits", "--data-binarize"],
    "nade": ["--data", "digits", "--data-binarize", "--model-hidden", "16"],
    "made": ["--data", "digits", "--data-binarize", "--model-hidden", "32", "--model-num-masks", "2"],
}

METRIC = {"gan": "modes", "gan-wgan-dcgan": "fid", "vae": "nll_iwae20_nats", "vae-gauss": "nll_iwae20_nats", "vae-grey": "fid",
          "planar": "nll_nats", "realnvp": "bits_per_dim", "glow": "bits_per_dim", "maf": "nll_nats",
          "fvsbn": "nll_nats", "nade": "nll_nats", "made": "nll_nats"}


@pytest.mark.parametrize("case", list(CASES))
def test_train_eval_sample(case, tmp_path, capsys, monkeypatch):
    import deepatlas.eval.fid

    # FID's feature classifier is trained once per dataset and cached; here only the wiring is checked
    monkeypatch.setattr(deepatlas.eval.fid, "fid_against_test", lambda samples, dataset: {
        "fid": float(samples.shape[1:] == dataset.info.shape), "fid_n_samples": len(samples)})
    method = case.split("-")[0]
    run = tmp_path / "run"
    rc = main(["train", method, *CASES[case], "--out", str(run), "--no-progress", "--train-steps", "3",
               "--train-batch-size", "16", "--train-warmup", "0"])
    assert rc == 0
    assert any((run / "samples").glob("step-*.png"))
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "20"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert METRIC[case] in result
    if METRIC[case] == "fid":
        assert result["fid"] == 1.0 and result["fid_n_samples"] == 20
    assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 100


def test_binary_only_methods_say_what_to_do(tmp_path, capsys):
    rc = main(["train", "nade", "--data", "digits", "--data-binarize", "--no-data-binarize", "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "--data-binarize" in capsys.readouterr().err
