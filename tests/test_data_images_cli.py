"""Every image method trains on a folder of the user's own pictures from the command line (2 steps), and
evaluates and samples from it: RGB at 16 pixels with class subfolders, grey at 32 pixels without."""

import json

import pytest

from deepatlas.cli import main
from tests import image_folders as F

SMALL = {  # small networks: only the wiring is checked here
    "edm": ["--model-channels", "8", "--model-sample-steps", "2"],
    "ddpm": ["--model-channels", "8", "--model-sample-steps", "2", "--model-sampler", "ddim"],
    "flow": ["--model-channels", "8", "--model-sample-steps", "2"],
    "ve": ["--model-channels", "8", "--model-sample-steps", "2"],
    "gan": ["--model-width", "8", "--model-n-critic", "1"],
    "gan-ns": ["--model-width", "8", "--model-loss", "non-saturating"],  # the DCGAN discriminator with batch norm
    "vae": ["--no-data-binarize", "--model-eval-k", "4", "--model-hidden", "16"],
    "realnvp": ["--model-hidden", "8", "--model-steps", "1"],
    "glow": ["--model-hidden", "8", "--model-steps", "1"],
    "simclr": ["--model-width", "8"],
    "contrastive": ["--model-width", "8", "--model-pairs", "views"],
    "contrastive-labels": ["--model-width", "8"],
    "cpc": ["--model-width", "8"],
    "supervised": ["--model-width", "8"],
    "nade": ["--data-binarize", "--model-hidden", "8"],
}
NEEDS_LABELS = {"contrastive-labels", "supervised"}
METRIC = {"edm": "fid", "ddpm": "fid", "flow": "fid", "ve": "fid", "gan": "fid", "gan-ns": "fid", "vae": "fid",
          "realnvp": "bits_per_dim", "glow": "bits_per_dim", "simclr": "linear_probe_acc", "contrastive": "knn_acc",
          "contrastive-labels": "knn_acc", "cpc": "linear_probe_acc", "supervised": "linear_probe_acc",
          "nade": "nll_nats"}
SAMPLES = {"simclr", "contrastive", "contrastive-labels", "cpc", "supervised"}  # encoders draw no samples


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    return {"rgb16": (F.labelled(root / "pets"), "16"), "grey32": (F.flat(root / "flat"), "32")}


CASES = [(case, kind) for case in SMALL for kind in ("rgb16", "grey32") if not (kind == "grey32" and case in NEEDS_LABELS)]


@pytest.mark.parametrize("case,kind", CASES)
def test_train_eval_sample_on_own_pictures(case, kind, folders, tmp_path, capsys, monkeypatch):
    import deepatlas.eval.fid

    folder, res = folders[kind]
    if kind == "rgb16":  # without labels the real FID refuses before training its classifier
        monkeypatch.setattr(deepatlas.eval.fid, "fid_against_test", lambda samples, dataset: {  # the wiring, not FID
            "fid": float(samples.shape[1:] == dataset.info.shape), "fid_n_samples": len(samples)})
    method = case.split("-")[0]
    run = tmp_path / "run"
    rc = main(["train", method, "--data", "images", "--data-path", str(folder), "--data-resolution", res,
               *SMALL[case], "--out", str(run), "--no-progress", "--train-steps", "2", "--train-batch-size", "4",
               "--train-warmup", "0"])
    assert rc == 0, capsys.readouterr().err
    saved = json.loads((run / "config.json").read_text())["data"]
    assert saved["name"] == "images" and saved["resolution"] == int(res)
    capsys.readouterr()
    rc = main(["eval", str(run), "--n", "4"])
    out, err = capsys.readouterr()
    labelled = kind == "rgb16"
    if labelled or METRIC[case] in ("bits_per_dim", "nll_nats") or method in ("gan", "vae"):
        assert rc == 0, err
        result = json.loads(out)
        if labelled or METRIC[case] != "fid":
            assert METRIC[case] in result
            if METRIC[case] == "fid":
                assert result["fid"] == 1.0  # the samples have the folder's shape
        else:  # generative methods without labels: no in-domain classifier, said so in the result
            assert "fid_skipped" in result
    else:  # diffusion FID and the feature probes need labels: a one-line refusal
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "class" in err, err
    if case not in SAMPLES:
        assert main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
        assert (tmp_path / "s.png").stat().st_size > 100


def test_label_pairs_on_an_unlabelled_folder_say_what_to_do(folders, tmp_path, capsys):
    folder, _ = folders["grey32"]
    rc = main(["train", "contrastive", "--data", "images", "--data-path", str(folder), "--out", str(tmp_path / "r"),
               "--train-steps", "1"])
    assert rc == 2 and "--model-pairs views" in capsys.readouterr().err


def test_dcgan_says_which_resolutions_work(folders, tmp_path, capsys):
    folder, _ = folders["grey32"]
    rc = main(["train", "gan", "--data", "images", "--data-path", str(folder), "--data-resolution", "18",
               "--out", str(tmp_path / "r"), "--train-steps", "1"])
    assert rc == 2 and "--data-resolution 16 or 32" in capsys.readouterr().err
