"""The diffusion methods end to end: CLI train / sample / eval, guidance, learning on a 2-D toy."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.diffusion.denoiser import guided
from deepatlas.eval.fid import frechet_distance
from deepatlas.registry import get
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit


def _main(*args):
    from deepatlas.cli import main

    assert main([str(a) for a in args]) == 0


def _cli(*args, env=None, check=True):
    r = subprocess.run([sys.executable, "-m", "deepatlas", *args], capture_output=True, text=True, env=env)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_train_sample_eval_on_digits(tmp_path, monkeypatch, capsys):
    import os

    monkeypatch.setenv("DEEPATLAS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    _main("train", "ddpm", "--data", "digits", "--out", run, "--train-steps", "20", "--train-ckpt-every", "10",
          "--model-channels", "8", "--model-class-cond", "--no-progress")
    assert (run / "model.safetensors").exists() and (run / "samples" / "step-00000020.png").exists()
    for sampler, steps in [("ddim", "5"), ("heun", "3"), ("dpmpp-2m", "4"), ("euler", "4")]:
        out = tmp_path / f"{sampler}.png"
        _main("sample", run, "--n", "8", "--sampler", sampler, "--steps", steps, "--guidance", "2",
              "--label", "3", "--out", out)
        assert out.exists() and out.with_name(f"{sampler}-trajectory.png").exists()
    capsys.readouterr()
    _main("eval", run, "--n", "50")
    result = json.loads(capsys.readouterr().out)
    assert result["fid_n_samples"] == 50 and result["fid"] > 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bad = _cli("sample", str(run), "--sampler", "hune", env=env, check=False)
    assert bad.returncode == 2 and "did you mean 'heun'" in bad.stderr and "Traceback" not in bad.stderr


def test_guidance_combines_conditional_and_unconditional():
    def D(x, sigma, y):  # a fake denoiser whose output is its label
        return y.double()[:, None].expand_as(x)

    x, y = torch.zeros(3, 2, dtype=torch.float64), torch.tensor([1, 2, 3])
    assert torch.equal(guided(D, y, 10, 0.0)(x, 1.0), torch.full((3, 2), 10.0, dtype=torch.float64))
    assert torch.equal(guided(D, y, 10, 1.0)(x, 1.0), y.double()[:, None].expand(3, 2))
    w = 3.0
    assert torch.allclose(guided(D, y, 10, w)(x, 1.0), (10 + w * (y - 10)).double()[:, None].expand(3, 2))


def test_frechet_distance_of_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0]), np.array([1.0, -1.0])
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    # |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2 for diagonal covariances
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(5 + (1 - 3) ** 2 + (2 - 1) ** 2)


@pytest.mark.parametrize("name", ["edm", "flow", "ddpm", "ve"])
def test_each_formulation_learns_the_eight_gaussians(tmp_path, name):
    torch.manual_seed(0)
    data = load_dataset(DataConfig(name="toy2d", variant="gaussians8", size=4000))
    spec = get("method", name).obj
    method = spec(spec.Config(hidden=128, depth=3, sigma_data=1.0), data.info)
    fit(method, data, TrainConfig(steps=600, batch_size=256, lr=3e-3, warmup=50, ema_decay=0.0, ckpt_every=10**6),
        tmp_path, progress=False)
    from deepatlas.data.toy2d import gaussians8_centers

    x = method.sample(2000, generator=torch.Generator().manual_seed(0))
    d = torch.cdist(x, gaussians8_centers()).min(1).values
    counts = torch.bincount(torch.cdist(x, gaussians8_centers()).argmin(1), minlength=8)
    # uniform points in the [-3, 3]^2 box land within 0.5 of a mode 17% of the time
    assert (d < 0.5).float().mean() > 0.6, name
    assert counts.min() > 2000 / 8 * 0.3, counts  # and no mode is dropped
