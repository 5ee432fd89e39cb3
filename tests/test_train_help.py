"""`deepatlas train M --help` tells the truth: the defaults it prints are the ones a run without flags
uses, it lists only the data options M's datasets read, and the datasets and options M cannot use are
refused with one line. Every method and dataset declares what it accepts and reads, and a loader that
reads an undeclared DataConfig field is caught by recording its attribute reads."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from deepatlas import config as C
from deepatlas.cli import _train_parser, main
from deepatlas.data.base import DataConfig
from deepatlas.registry import table
from deepatlas.train.method_defaults import data_fields, run_config

METHODS = sorted(table("method"))
DATASETS = sorted(table("dataset"))
DATA_FIELDS = {f.name for f in dataclasses.fields(DataConfig)}
SECTIONS = {"data_": "data", "model_": "model", "train_": "train"}


def _shown_defaults(method: str) -> dict[str, str]:
    """dest -> the X of '(default: X)' for every option the help lists."""
    parser, _ = _train_parser(method)
    out = {}
    for action in parser._actions:
        if not action.option_strings or action.help in (None, "==SUPPRESS==") or "(default: " not in action.help:
            continue
        m = re.search(r"\(default: (.*)\)$", action.help)
        assert m, (method, action.dest, action.help)
        out[action.dest] = m.group(1)
    return out


@pytest.mark.parametrize("method", METHODS)
def test_help_defaults_are_what_a_run_without_flags_uses(method):
    cfg = run_config(table("method")[method])  # the function run_training calls, with no flags given
    shown = _shown_defaults(method)
    assert "data_name" in shown and any(d.startswith("train_") for d in shown)
    for dest, text in shown.items():
        prefix = next(p for p in SECTIONS if dest.startswith(p))
        value = getattr(getattr(cfg, SECTIONS[prefix]), dest[len(prefix):])
        assert text == C.show_default(value), (method, dest, text, value)
    # and every model and train field is shown
    for section, obj in (("model", cfg.model), ("train", cfg.train)):
        for f in dataclasses.fields(obj):
            assert f"{section}_{f.name}" in shown, (method, section, f.name)


def test_gan_help_prints_its_own_learning_rate_and_batch(capsys):
    """The bug this fixes: the help printed TrainConfig's 0.002 / 128 while gan trains with its own
    (the WGAN-GP paper's Adam lr 1e-4, betas (0, 0.9)) and batch 256."""
    assert main(["train", "gan", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "peak learning rate of AdamW (default: 0.0001)" in text
    assert "examples per step and per process (default: 256)" in text
    assert "(default: 0.002)" not in text


@pytest.mark.parametrize("method", METHODS)
def test_help_lists_the_datasets_and_only_the_data_options_they_read(method, capsys):
    spec = table("method")[method]
    assert main(["train", method, "--help"]) == 0
    text = capsys.readouterr().out
    assert f"datasets: {' | '.join(spec.obj.datasets)}" in text
    listed = set(re.findall(r"^\s+--data-([a-z-]+)", text, re.M))
    expected = {f.replace("_", "-") for f in data_fields(spec.obj)}
    assert listed == expected, (method, listed, expected)


# --- declarations ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_every_method_declares_registered_datasets_and_defaults_to_one(method):
    spec = table("method")[method]
    assert isinstance(spec.obj.datasets, tuple) and spec.obj.datasets
    assert set(spec.obj.datasets) <= set(DATASETS), (method, spec.obj.datasets)
    cfg = run_config(spec)
    assert cfg.data.name in spec.obj.datasets
    # a data default the method sets must be read by its default dataset, or it would be silently ignored
    set_by_method = set(getattr(spec.obj, "defaults", {}).get("data", {})) - {"name"}
    assert set_by_method <= set(table("dataset")[cfg.data.name].fields), (method, set_by_method)


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_declares_data_config_fields(name):
    fields = table("dataset")[name].fields
    assert fields, name
    assert set(fields) <= DATA_FIELDS - {"name"}, (name, set(fields) - DATA_FIELDS)
    assert len(set(fields)) == len(fields)


def test_every_dataset_is_accepted_by_some_method():
    accepted = {d for spec in table("method").values() for d in spec.obj.datasets}
    assert accepted == set(DATASETS), set(DATASETS) - accepted


# --- loaders read only what they declare ----------------------------------------------------------

class RecordingConfig(DataConfig):
    """A DataConfig that records which of its fields are read."""

    def __init__(self, **values):
        object.__setattr__(self, "_read", set())
        super().__init__(**values)

    def __getattribute__(self, name):
        if name in DATA_FIELDS:
            object.__getattribute__(self, "_read").add(name)
        return object.__getattribute__(self, name)


def _off_folder(root):
    tetra = "OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n"
    for split in ("train", "test"):
        (root / "tetra" / split).mkdir(parents=True)
        (root / "tetra" / split / "a.off").write_text(tetra)
    return root


def _coco_file(tmp_path):
    from deepatlas.data.coco import write_coco
    from deepatlas.data.scenes import load

    d = load(DataConfig(name="scenes", variant="shapes", size=4))
    return write_coco(d.train, d.info.extra["classes"], tmp_path / "coco", "train")


def _configs(name, tmp_path):
    """Settings of each dataset that together reach every branch of its loader that reads a field."""
    from test_train_bad_input import make_fashion

    small = {"size": 8, "points": 16}
    if name == "fashion-mnist":
        folder = str(make_fashion(tmp_path / "fm"))
        return [dict(path=folder), dict(path=folder, binarize=True, size=4)]
    if name == "digits":
        return [dict(size=8), dict(binarize=True)]
    if name == "text":
        corpus = tmp_path / "corpus.txt"
        corpus.write_text("the quick brown fox jumps over the lazy dog. " * 200)
        return [dict(path=str(corpus), seq_len=16, size=4),
                dict(path=str(corpus), seq_len=16, tokenizer="bpe", vocab_size=64)]
    if name == "reversal":
        return [dict(size=8), dict(size=8, variant="sft")]
    if name == "coco":
        return [dict(path=str(_coco_file(tmp_path)), size=2)]
    if name == "pointcloud-files":
        return [dict(path=str(_off_folder(tmp_path / "off")), size=1, points=16)]
    if name == "scenes":
        return [dict(size=4, variant="shapes")]
    if name in ("shapes3d", "parts3d"):
        return [dict(small, variant="z")]
    if name == "images":
        from image_folders import labelled

        folder = str(labelled(tmp_path / "pictures"))
        return [dict(path=folder, size=4, resolution=8), dict(path=folder, binarize=True, channels=3, seed=1)]
    if name == "correlated-gaussians":
        return [dict(size=8, variant="rho=0.5,dim=2")]
    return [dict(size=8)]


@pytest.mark.parametrize("name", DATASETS)
def test_loader_reads_only_the_fields_it_declares(name, tmp_path):
    entry = table("dataset")[name]
    read = set()
    for values in _configs(name, tmp_path):
        cfg = RecordingConfig(name=name, **values)
        dataset = entry.obj(cfg)
        assert len(dataset.train) > 0
        read |= object.__getattribute__(cfg, "_read")
    assert read, name  # the recorder works: every loader reads something
    undeclared = read - set(entry.fields) - {"name"}
    assert not undeclared, f"dataset '{name}' reads {sorted(undeclared)} but declares only {entry.fields}"


def test_the_recorder_sees_a_read_hidden_in_a_helper():
    cfg = RecordingConfig(name="digits")
    (lambda c: c.points)(cfg)
    assert object.__getattribute__(cfg, "_read") == {"points"}


# --- refusals -------------------------------------------------------------------------------------

def _error(argv, capsys) -> str:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("deepatlas: error: "), err
    return err


def test_a_dataset_the_method_does_not_take_is_refused_with_the_ones_it_takes(tmp_path, capsys):
    err = _error(["train", "edm", "--data", "text", "--out", tmp_path / "r"], capsys)
    assert "'edm' does not take --data text" in err and "digits | fashion-mnist | images | toy2d" in err
    assert not (tmp_path / "r").exists()


def test_an_unknown_dataset_suggests_the_closest_name(tmp_path, capsys):
    err = _error(["train", "edm", "--data", "toy2", "--out", tmp_path / "r"], capsys)
    assert "toy2d" in err


@pytest.mark.parametrize("method,data,flag", [
    ("edm", "toy2d", ["--data-path", "x"]),       # toy2d is generated
    ("edm", "digits", ["--data-variant", "moons"]),
    ("edm", "digits", ["--data-seq-len", "32"]),  # a text option, hidden from edm's help but still refused
    ("mdlm", "text", ["--data-binarize"]),
    ("pointnet", "shapes3d", ["--data-path", "x"]),
])
def test_a_data_option_the_dataset_ignores_is_refused(tmp_path, capsys, method, data, flag):
    err = _error(["train", method, "--data", data, *flag, "--out", tmp_path / "r"], capsys)
    assert f"dataset '{data}' does not use {flag[0]}" in err, err
    assert not (tmp_path / "r").exists()


def test_a_data_option_the_dataset_reads_is_accepted(tmp_path):
    spec = table("method")["edm"]
    parser, _ = _train_parser("edm")
    args = parser.parse_args(["--data", "digits", "--data-binarize", "--data-size", "10", "--out", str(tmp_path)])
    cfg = run_config(spec, args)
    assert (cfg.data.name, cfg.data.binarize, cfg.data.size) == ("digits", True, 10)
    assert cfg.train.lr == pytest.approx(2e-3)  # edm sets no train defaults: TrainConfig's


def test_next_command_follows_what_the_method_can_do(tmp_path):
    from deepatlas.cli import next_command

    assert next_command(table("method")["edm"].obj, tmp_path) == f"deepatlas sample {tmp_path}"
    assert next_command(table("method")["classifier"].obj, tmp_path) == f"deepatlas eval {tmp_path}"


def test_train_prints_the_next_command(tmp_path, capsys):
    out = tmp_path / "r"
    torch.manual_seed(0)
    assert main(["train", "flow", "--data", "toy2d", "--data-size", "64", "--out", str(out), "--no-progress",
                 "--train-steps", "2", "--train-batch-size", "8", "--model-hidden", "8", "--model-depth", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"next: deepatlas sample {out}"
