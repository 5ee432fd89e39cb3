"""Every registered method takes a training step and draws a sample without making a tensor off its device.

The trainer moves a method to a GPU when there is one. The meta device stands in for it here: meta
tensors have shapes but no data, and an op that mixes one with a CPU tensor raises, as on CUDA. So a
tiny config of each method is moved to meta, fed a meta batch, and its loss (every phase), backward pass
and sampler must run and give meta tensors.

Two things meta cannot stand in for:
- ops that read data (`.item()`, `bool(t)`, `.tolist()`, `nonzero`, boolean indexing, copying to the
  CPU) have none to read. Methods that need one are listed in NOT_ON_META with the op: their test runs
  up to it and passes (as xfail) only if that op is what stops it; a device mismatch before it still
  fails, and so does a run that gets through (then the entry is stale). The code after the op was
  reviewed by reading.
- a seeded CPU `torch.Generator` used on a meta tensor does not raise, where CUDA would; seeded draws
  are made on the CPU and moved to the device, which was checked by reading.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import torch

from deepatlas import registry
from deepatlas.data.base import DataConfig, load_dataset

META = torch.device("meta")
BATCH = 4
TEXT = {"name": "text", "seq_len": 16}
TINY_LM = {"d_model": 8, "n_layers": 1, "n_heads": 2}
SCENES = {"name": "scenes", "size": 8}


@dataclass
class Case:
    method: str
    data: dict
    model: dict = field(default_factory=dict)
    draw: Callable[[Any], Any] | None = None  # what the trainer's write_samples runs, minus the file
    eval_mode: str = ""  # a reason to take the training step in eval mode


def _prompt(m):
    return m.default_prompt(2)


def _seed():
    """A CPU generator, as write_samples and `deepatlas sample` pass to the samplers."""
    return torch.Generator().manual_seed(0)


CASES = {
    "gan": Case("gan", {"name": "toy2d", "size": 16}, {"width": 8, "depth": 1, "latent": 4},  # WGAN-GP: 5 critic phases
                draw=lambda m: m.sample(3, _seed())),
    "gan-dcgan": Case("gan", {"name": "digits"}, {"loss": "non-saturating", "width": 4, "latent": 4},
                      draw=lambda m: m.sample(3, _seed())),
    "vae": Case("vae", {"name": "digits", "binarize": True}, {"hidden": 8, "depth": 1, "latent": 2, "k": 2},
                draw=lambda m: m.sample(3, _seed())),
    "vae-gaussian": Case("vae", {"name": "toy2d", "size": 16}, {"hidden": 8, "depth": 1}, draw=lambda m: m.sample(3, _seed())),
    "fvsbn": Case("fvsbn", {"name": "digits", "binarize": True}, draw=lambda m: m.sample(2, _seed())),
    "nade": Case("nade", {"name": "digits", "binarize": True}, {"hidden": 8}, draw=lambda m: m.sample(2, _seed())),
    "made": Case("made", {"name": "digits", "binarize": True}, {"hidden": 8, "num_masks": 2, "order_agnostic": True},
                 draw=lambda m: m.sample(2, _seed())),
    "planar": Case("planar", {"name": "toy2d", "size": 16}, {"steps": 2}, draw=lambda m: m.sample(3, _seed())),
    "realnvp": Case("realnvp", {"name": "toy2d", "size": 16}, {"steps": 2, "hidden": 8}, draw=lambda m: m.sample(3, _seed())),
    "glow": Case("glow", {"name": "digits"}, {"steps": 1, "levels": 2, "hidden": 8}, draw=lambda m: m.sample(2, _seed()),
                 eval_mode="ActNorm asks its buffer 'initialised?' as a Python bool in training mode"),
    "maf": Case("maf", {"name": "toy2d", "size": 16}, {"steps": 2, "hidden": 8}, draw=lambda m: m.sample(3, _seed())),
    "ddpm": Case("ddpm", {"name": "toy2d", "size": 16}, {"hidden": 8, "depth": 1},
                 draw=lambda m: m.sample(2, _seed(), m.SampleConfig(steps=2, churn=1.0))),
    "ddpm-ancestral": Case("ddpm", {"name": "toy2d", "size": 16}, {"hidden": 8, "depth": 1},
                           draw=lambda m: m.sample(2, _seed(), m.SampleConfig(sampler="ddim", steps=2, eta=1.0))),
    "ve": Case("ve", {"name": "toy2d", "size": 16}, {"hidden": 8, "depth": 1},
               draw=lambda m: m.sample(2, _seed(), m.SampleConfig(steps=2))),
    "flow": Case("flow", {"name": "toy2d", "size": 16}, {"hidden": 8, "depth": 1},
                 draw=lambda m: m.sample(2, _seed(), m.SampleConfig(steps=2))),
    "edm": Case("edm", {"name": "digits"}, {"channels": 8, "channel_mult": (1, 2), "class_cond": True, "p_uncond": 0.5},
                draw=lambda m: m.sample(2, _seed(), m.SampleConfig(steps=2, guidance=2.0))),
    "ar": Case("ar", TEXT, TINY_LM, draw=lambda m: m.complete(_prompt(m), m.SampleConfig(length=3))),
    "ngram": Case("ngram", {"name": "reversal", "size": 16}, {"order": 2}, draw=lambda m: m.complete(_prompt(m), m.SampleConfig(length=3))),
    "bd3lm": Case("bd3lm", TEXT, TINY_LM, draw=lambda m: m.complete(_prompt(m), m.SampleConfig(length=6, steps=2))),
    "bd3lm-time": Case("bd3lm", TEXT, {**TINY_LM, "likelihood": "time"}),
    "mdlm": Case("mdlm", TEXT, TINY_LM, draw=lambda m: m.complete(_prompt(m), m.SampleConfig(length=4, steps=2))),
    "llada": Case("llada", TEXT, TINY_LM, draw=lambda m: m.complete(_prompt(m), m.SampleConfig(length=4, steps=2, sampler="llada-low-confidence", cfg_scale=1.0))),
    "llada-sft": Case("llada", {"name": "reversal", "variant": "sft", "size": 16}, TINY_LM),
    "sedd-absorb": Case("sedd-absorb", TEXT, TINY_LM, draw=lambda m: m.complete(_prompt(m), m.SampleConfig(length=4, steps=2))),
    "sedd-uniform": Case("sedd-uniform", TEXT, TINY_LM, draw=lambda m: m.complete(_prompt(m), m.SampleConfig(length=4, steps=3, sampler="sedd-euler"))),
    "cpc": Case("cpc", {"name": "sines", "size": 16}, {"width": 8, "dim": 4}),
    "contrastive": Case("contrastive", {"name": "digits"}, {"width": 8, "dim": 4, "head_dim": 4, "pairs": "views"}),
    "mi": Case("mi", {"name": "correlated-gaussians", "size": 16}, {"hidden": 8}),
    "simclr": Case("simclr", {"name": "digits"}, {"width": 8, "dim": 4, "head_dim": 4}),
    "ntxent": Case("ntxent", {"name": "digits"}, {"width": 8, "dim": 4, "head_dim": 4, "views": 3}),
    "supervised": Case("supervised", {"name": "digits"}, {"width": 8, "dim": 4, "augment": True}),
    "centernet": Case("centernet", SCENES, {"width": 8}, draw=lambda m: m.write_samples("samples", 0)),
    "fcos": Case("fcos", SCENES, {"width": 8, "fpn": True}, draw=lambda m: m.write_samples("samples", 0)),
    "yolov1": Case("yolov1", SCENES, {"width": 8}, draw=lambda m: m.write_samples("samples", 0)),
    "pointnet": Case("pointnet", {"name": "shapes3d", "size": 8, "points": 16}, {"width": 0.05}),
    "pointnet-seg": Case("pointnet-seg", {"name": "parts3d", "size": 8, "points": 16}, {"width": 0.05}),
    "classifier": Case("classifier", {"name": "imbalanced", "size": 16}, {"loss": "smooth-f1", "hidden": 8}),
}

# (case, "loss" | "draw") -> the data-dependent op that stops meta there (module docstring)
NOT_ON_META = {
    ("ngram", "loss"): "the count model reads the tokens into Python (x.tolist())",
    ("ngram", "draw"): "the count model reads the prompt into Python (prompt.tolist())",
    ("fvsbn", "draw"): "the seeded Bernoulli draw copies p to the CPU generator (p.cpu())",
    ("nade", "draw"): "the seeded Bernoulli draw copies p to the CPU generator (p.cpu())",
    ("made", "draw"): "the sampling order is read into Python (argsort(order).tolist())",
    ("maf", "draw"): "the inverse walks the MADE order in Python (argsort(order).tolist())",
    ("contrastive", "loss"): "pair mining selects pairs by boolean indexing (nonzero)",
    ("simclr", "loss"): "NT-Xent finds the positive pairs with nonzero()",
    ("ntxent", "loss"): "NT-Xent finds the positive pairs with nonzero()",
    ("centernet", "loss"): "targets are splatted object by object in Python, from boxes.cpu()",
    ("fcos", "loss"): "the positive count and the positive-only losses use int(pos.sum()) and pos masks",
    ("yolov1", "loss"): "targets are assigned object by object in Python, from boxes.cpu()",
    ("centernet", "draw"): "detections are filtered by score with boolean indexing",
    ("fcos", "draw"): "detections are filtered by score with boolean indexing",
    ("yolov1", "draw"): "detections are filtered by score with boolean indexing",
}

DATA_DEPENDENT = re.compile(r"cannot be called on meta tensors|Cannot copy out of meta tensor|"
                            r"register_meta function for torch\.nonzero|run this operator with Meta tensors")


@functools.cache
def _data(**kw):
    return load_dataset(DataConfig(**kw))


def _build(case: Case):
    spec = registry.get("method", case.method).obj
    data = _data(**case.data)
    torch.manual_seed(0)
    m = spec(spec.Config(**case.model), data.info).to(META)
    batch = {k: v.to(META) for k, v in data.train.get(torch.arange(BATCH)).items()}
    return m, batch


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def _on_meta(fn: Callable[[], Any], reason: str | None) -> None:
    """Run fn; where `reason` names a data-dependent op, that op, and nothing before it, must stop it."""
    if reason is None:
        fn()
        return
    try:
        fn()
    except (RuntimeError, NotImplementedError) as e:
        if not DATA_DEPENDENT.search(str(e)):
            raise
        pytest.xfail(reason)
    pytest.fail(f"ran to the end on meta; drop it from NOT_ON_META ({reason})")


def test_every_registered_method_has_a_case():
    assert {c.method for c in CASES.values()} == set(registry.table("method"))


@pytest.mark.parametrize("name", list(CASES))
def test_training_step_stays_on_the_device(name):
    case = CASES[name]
    m, batch = _build(case)
    m.train(not case.eval_mode)

    def step():
        for _, closure in m.train_phases(batch):
            out = closure()
            off = [k for k, v in out.items() if isinstance(v, torch.Tensor) and v.device != META]
            assert not off, f"{name}: {off} not on the device"
            out["loss"].backward()

    _on_meta(step, NOT_ON_META.get((name, "loss")))


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.draw is not None])
def test_draw_stays_on_the_device(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the detectors' draw is write_samples, which writes a picture
    m, _ = _build(CASES[name])

    def draw():
        out = list(_tensors(CASES[name].draw(m)))
        assert out and all(t.device == META for t in out), f"{name}: a sample is not on the device"

    _on_meta(draw, NOT_ON_META.get((name, "draw")))


def test_method_device_follows_every_move():
    """`Method.device` is looked up once and cached: a move (.to, load_state_dict(assign=True)) must drop it."""
    from deepatlas.generative.vae import VAE

    data = load_dataset(DataConfig(name="digits", binarize=True))
    m = VAE(VAE.Config(hidden=8, depth=1), data.info)
    assert m.device.type == "cpu"  # now cached
    state = {k: v.to("meta") for k, v in m.state_dict().items()}
    m.to("meta")
    assert m.device.type == "meta"
    m.to_empty(device="cpu")
    assert m.device.type == "cpu"
    m.load_state_dict(state, assign=True)
    assert m.device.type == "meta"
