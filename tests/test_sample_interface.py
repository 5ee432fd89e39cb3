"""The one sampling interface: typed options honoured or refused, per-run --help, --steps counted, the
registered sampler names as the keys, raw samples in data units, and eval --seed."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from deepatlas import registry
from deepatlas.cli import main
from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.data.units import from_pixels, to_pixels
from deepatlas.errors import UserError
from deepatlas.report.arrays import load_arrays
from deepatlas.train.run import open_run

TOY = ["--data", "toy2d", "--data-size", "64", "--train-steps", "2", "--train-batch-size", "16", "--no-progress"]


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ddpm"
    assert main(["train", "ddpm", "--out", str(run), *TOY, "--model-hidden", "16", "--model-depth", "1"]) == 0
    return run


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "gan"
    assert main(["train", "gan", "--out", str(run), *TOY, "--model-width", "8", "--model-depth", "1",
                 "--model-latent", "4"]) == 0
    return run


def _err(argv, capsys) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one line
    return err


# --- wrong options are one-line errors naming the option and the sampler ---------------------------

@pytest.mark.parametrize("flags,option,sampler", [
    (["--sampler", "euler", "--churn", "1"], "--churn", "euler"),
    (["--sampler", "heun", "--eta", "0.5"], "--eta", "heun"),
    (["--sampler", "ddpm", "--eta", "0.5"], "--eta", "ddpm"),  # ddpm fixes eta = 1
])
def test_option_the_sampler_does_not_use_is_refused(ddpm_run, capsys, flags, option, sampler):
    err = _err(["sample", ddpm_run, "--n", "2", *flags], capsys)
    assert option in err and f"'{sampler}'" in err


def test_option_a_gan_run_does_not_have_is_refused(gan_run, capsys):
    err = _err(["sample", gan_run, "--eta", "0.5"], capsys)
    assert "--eta" in err and "'gan'" in err
    assert "--eta" in _err(["eval", gan_run, "--eta", "0.5"], capsys)


def test_unknown_sampler_and_bad_steps(ddpm_run, capsys):
    assert "did you mean 'heun'" in _err(["sample", ddpm_run, "--sampler", "hune"], capsys)
    assert "--steps must be >= 0, got -3" in _err(["sample", ddpm_run, "--steps", "-3"], capsys)
    assert "not a continuous-diffusion sampler" in _err(["sample", ddpm_run, "--sampler", "sedd-euler"], capsys)


def test_the_python_api_refuses_the_same_options():
    data = load_dataset(DataConfig(name="toy2d", size=16))
    m = registry.get("method", "edm").obj(registry.get("method", "edm").obj.Config(hidden=8, depth=1), data.info)
    S = m.SampleConfig
    with pytest.raises(UserError, match="--churn is not an option of sampler 'euler'"):
        m.sample(2, None, S(sampler="euler", churn=1.0))
    with pytest.raises(UserError, match="--eta is not an option of sampler 'heun'"):
        m.sample(2, None, S(sampler="heun", eta=0.0))
    with pytest.raises(UserError, match="--label needs a class-conditional run"):
        m.sample(2, None, S(label=1))
    with pytest.raises(UserError, match="must be a DiffusionSampleConfig"):
        m.sample(2, None, {"steps": 3})


# --- `sample RUN --help` lists that run's options only ----------------------------------------------

def test_help_lists_only_the_runs_options(ddpm_run, gan_run, capsys):
    capsys.readouterr()
    assert main(["sample", str(ddpm_run), "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--sampler", "--steps", "--eta", "--churn", "--guidance", "--n", "--seed", "--format"):
        assert flag in text
    assert "--temperature" not in text and "--scales" not in text and "--top-k" not in text
    assert main(["sample", str(gan_run), "--help"]) == 0
    text = capsys.readouterr().out
    assert "--n" in text and "--eta" not in text and "--steps" not in text and "--sampler" not in text


# --- --steps is honoured: count the network evaluations ---------------------------------------------

@pytest.mark.parametrize("sampler,steps", [("ddim", 10), ("ddpm", 10), ("ddpm", 1000), ("heun", 5), ("euler", 7),
                                           ("dpmpp-2m", 6)])
def test_steps_set_the_number_of_denoiser_calls(sampler, steps):
    data = load_dataset(DataConfig(name="toy2d", size=16))
    cls = registry.get("method", "ddpm").obj
    m = cls(cls.Config(hidden=8, depth=1), data.info)
    calls = []
    forward = m.denoiser.forward
    m.denoiser.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    m.sample(3, torch.Generator().manual_seed(0), m.SampleConfig(sampler=sampler, steps=steps))
    expected = {"heun": 2 * steps - 1}.get(sampler, steps)  # heun: two evaluations a step but the last
    assert len(calls) == expected == m.nfe(sampler, steps)


def test_ddpm_at_1000_steps_is_the_full_table():
    from deepatlas.diffusion import sigma_grids

    data = load_dataset(DataConfig(name="toy2d", size=16))
    cls = registry.get("method", "ddpm").obj
    m = cls(cls.Config(hidden=8, depth=1), data.info)
    assert torch.equal(m.grid("ddpm", 1000), sigma_grids.ddpm(m.precond.sigmas))
    with pytest.raises(UserError, match="more than the 1000 timesteps"):
        m.grid("ddpm", 1001)


# --- the registered names are the keys -------------------------------------------------------------

def _spy(monkeypatch, name, wrap):
    """Replace the registry entry `name` by `wrap(original)`; returns the list of recorded calls."""
    calls = []
    entry = registry.get("sampler", name)
    monkeypatch.setitem(registry._TABLES["sampler"], name,
                        dataclasses.replace(entry, obj=wrap(entry.obj, calls)))
    return calls


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler", "heun", "dpmpp-2m"])
def test_continuous_sampler_names_select_their_function(monkeypatch, name):
    from deepatlas.diffusion import samplers

    def wrap(spec, calls):
        assert spec is samplers.SAMPLERS[name]  # what is registered is what the method's table holds

        def fn(*a, **k):
            calls.append(name)
            return spec.fn(*a, **k)
        return spec._replace(fn=fn)

    calls = _spy(monkeypatch, name, wrap)
    data = load_dataset(DataConfig(name="toy2d", size=16))
    cls = registry.get("method", "edm").obj
    m = cls(cls.Config(hidden=8, depth=1), data.info)
    m.sample(2, None, m.SampleConfig(sampler=name, steps=2))
    assert calls == [name]


@pytest.mark.parametrize("method,name", [("mdlm", "mdlm-ancestral"), ("llada", "llada-low-confidence"),
                                         ("llada", "llada-random"), ("sedd-absorb", "sedd-euler"),
                                         ("sedd-uniform", "sedd-tweedie")])
def test_discrete_sampler_names_select_their_function(monkeypatch, tiny_text, method, name):
    def wrap(fn, calls):
        def spy(*a, **k):
            calls.append(name)
            return fn(*a, **k)
        return spy

    calls = _spy(monkeypatch, name, wrap)
    cls = registry.get("method", method).obj
    m = cls(cls.Config(d_model=16, n_layers=1, n_heads=2), tiny_text.info)
    out = m.sample(2, torch.Generator().manual_seed(0), m.SampleConfig(prompt="a", length=4, sampler=name, steps=2))
    assert calls and set(calls) == {name} and out.shape == (2, 5)
    with pytest.raises(UserError, match="must be one of"):
        m.sample(1, None, m.SampleConfig(sampler="euler", steps=2))


def test_llada_options_are_refused_by_the_mdlm_sampler(tiny_text):
    cls = registry.get("method", "mdlm").obj
    m = cls(cls.Config(d_model=16, n_layers=1, n_heads=2), tiny_text.info)
    with pytest.raises(UserError, match="--cfg-scale is not an option of sampler 'mdlm-ancestral'"):
        m.sample(1, None, m.SampleConfig(length=2, cfg_scale=2.0))


def test_text_samples_follow_the_generator(tiny_text):
    cls = registry.get("method", "ar").obj
    m = cls(cls.Config(d_model=16, n_layers=1, n_heads=2), tiny_text.info)
    opts = m.SampleConfig(length=12, temperature=1.0)
    a, b = (m.sample(4, torch.Generator().manual_seed(s), opts) for s in (0, 0))
    c = m.sample(4, torch.Generator().manual_seed(1), opts)
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- raw samples in data units ---------------------------------------------------------------------

def test_pixels_invert_the_loaders_exactly():
    from sklearn.datasets import load_digits

    d = load_dataset(DataConfig(name="digits"))
    raw = torch.tensor(load_digits().images, dtype=torch.float32)[:, None]
    x = torch.cat([d.train["x"], d.test["x"]])
    assert torch.equal(to_pixels(x, d.info).sort(0).values.sum(0), raw.sort(0).values.sum(0))
    assert torch.equal(to_pixels(x, d.info).round(), to_pixels(x, d.info))  # whole levels 0..16
    assert torch.equal(from_pixels(to_pixels(x, d.info), d.info), x)
    fashion = type(d.info)("image", (1, 2, 2), extra={"levels": 256})
    p = torch.arange(256.0).view(64, 1, 2, 2)
    back = to_pixels(p / 127.5 - 1.0, fashion)  # the Fashion-MNIST loader's map, inverted (up to float32 rounding)
    assert torch.equal(back.round(), p) and (back - p).abs().max() < 1e-4
    assert to_pixels(torch.tensor([-3.0, 3.0]), fashion).tolist() == [0.0, 255.0]  # clamped to the range


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_format_writes_the_samples_in_data_units(ddpm_run, tmp_path, fmt):
    out = tmp_path / "s.png"
    assert main(["sample", str(ddpm_run), "--n", "5", "--seed", "3", "--steps", "4", "--out", str(out),
                 "--format", fmt]) == 0
    arrays, meta = load_arrays(out.with_suffix("." + fmt))
    assert out.exists() and meta["seed"] == 3 and meta["options"]["steps"] == 4
    m, *_ = open_run(ddpm_run)
    again = m.sample(5, torch.Generator().manual_seed(3), dataclasses.replace(m.sample_defaults(), steps=4))
    assert np.array_equal(arrays["x"], again.numpy())  # toy2d vectors are not standardised: written as they are


def test_image_and_text_raw_samples(tmp_path, tiny_text):
    gan = registry.get("method", "gan").obj
    d = load_dataset(DataConfig(name="digits"))
    m = gan(gan.Config(loss="non-saturating", width=4, latent=4), d.info)
    x = m.sample(3, torch.Generator().manual_seed(0))
    raw = m.raw_samples(x)
    assert np.array_equal(raw["pixels"], ((x.clamp(-1, 1) + 1) * 8).numpy()) and raw["pixel_max"] == 16
    ar = registry.get("method", "ar").obj
    lm = ar(ar.Config(d_model=16, n_layers=1, n_heads=2), tiny_text.info)
    rows, paths = lm.sample_files(2, torch.Generator().manual_seed(0), lm.SampleConfig(prompt="Th", length=6),
                                  tmp_path / "t.png")
    raw = lm.raw_samples(rows)
    assert raw["tokens"].shape == (2, 8) and all(t.startswith("Th") for t in raw["text"])
    assert [lm.tokenizer.decode(r) for r in raw["tokens"]] == list(raw["text"])
    assert paths[0].suffix == ".txt" and paths[0].read_text().startswith(raw["text"][0])


# --- eval --seed -----------------------------------------------------------------------------------

def test_eval_seed_changes_the_metric_and_repeats_it(ddpm_run, capsys):
    def mmd(seed):
        capsys.readouterr()
        assert main(["eval", str(ddpm_run), "--n", "40", "--seed", str(seed), "--steps", "4"]) == 0
        return json.loads(capsys.readouterr().out)["mmd_rbf"]

    a, b, c = mmd(0), mmd(0), mmd(1)
    assert a == b and a != c
