"""Bad input gets a one-line error, no traceback: wrong names, broken IDX files, corrupt or foreign
weights, out-of-range numbers, broken run folders. Most cases call `deepatlas.cli.main` in-process (the
same code `python -m deepatlas` runs, minus interpreter start-up); a few run the real command line in a
subprocess to show that nothing else reaches the terminal."""

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import cli, one_line_error, tiny_args
from safetensors.torch import save_file

from deepatlas import registry
from deepatlas.cli import main
from deepatlas.data.idx import parse_idx


@pytest.fixture
def tiny():
    """The `tiny` test method, registered for the duration of one test."""
    import tiny_cli

    registry._TABLES["method"]["tiny"] = registry.Entry("tiny", "test", "test-only", tiny_cli.Tiny)
    yield tiny_cli.Tiny
    registry._TABLES["method"].pop("tiny", None)


def error_of(argv, capsys) -> str:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("deepatlas: error: "), err
    return err


# --- names --------------------------------------------------------------------------------------

def test_unknown_names_suggest_the_closest_subprocess(tmp_path):
    assert "unknown method 'tinny'; did you mean 'tiny'?" in one_line_error(cli(["train", "tinny"], tiny=True))
    err = one_line_error(cli(tiny_args(tmp_path / "r", "--data", "toy2"), tiny=True))
    assert "unknown dataset 'toy2'; did you mean 'toy2d'?" in err
    err = one_line_error(cli(["train", "tiny", "--out", str(tmp_path / "r"), "--train-steps", "0"], tiny=True))
    assert "--train-steps must be >= 1, got 0" in err


def test_unknown_names_in_process(tmp_path, capsys, tiny):
    assert "unknown toy2d variant 'moon'; did you mean 'moons'?" in error_of(
        tiny_args(tmp_path / "r", "--data-variant", "moon"), capsys)
    assert "invalid choice: 'evall'" in error_of(["evall", tmp_path], capsys)
    # a sampler name is checked against the run's own SampleConfig: tests/test_sample_interface.py
    assert "is not a run directory" in error_of(["sample", tmp_path, "--sampler", "eulr"], capsys)


# --- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,message", [
    (["--train-steps", "0"], "--train-steps must be >= 1, got 0"),
    (["--train-lr", "-1"], "--train-lr must be >= 0.0, got -1.0"),
    (["--train-lr", "nan"], "--train-lr must be a finite number, got nan"),
    (["--train-weight-decay", "inf"], "--train-weight-decay must be a finite number, got inf"),
    (["--train-beta1", "2"], "--train-beta1 must be <= 1.0, got 2.0"),
    (["--data-size", "-5"], "--data-size must be >= 0, got -5"),
    (["--model-width", "0"], "--model-width must be >= 1, got 0"),
    (["--train-steps", "ten"], "argument --train-steps: invalid int value: 'ten'"),
    (["--train-lr-decay", "linear"], "argument --train-lr-decay: invalid choice: 'linear'"),
    (["--train-nonsense", "1"], "unrecognized arguments: --train-nonsense 1"),
])
def test_out_of_range_numbers(tmp_path, capsys, tiny, flags, message):
    assert message in error_of(tiny_args(tmp_path / "r", *flags), capsys)
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_out_of_range_sample_and_eval_numbers(tmp_path, capsys):
    assert "--n must be >= 1, got 0" in error_of(["eval", tmp_path, "--n", "0"], capsys)
    assert "--n must be >= 1, got 0" in error_of(["sample", tmp_path, "--n", "0"], capsys)


# --- IDX files ----------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def make_fashion(folder: Path, n: int = 6, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, m in (("train", n), ("t10k", n // 2)):
        files = {f"{prefix}-images-idx3-ubyte": rng.integers(0, 256, (m, 28, 28), dtype=np.uint8),
                 f"{prefix}-labels-idx1-ubyte": rng.integers(0, 10, (m,), dtype=np.uint8)}
        for name, a in files.items():
            raw = idx_bytes(a)
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return folder


def test_valid_idx_folder_loads(tmp_path):
    from deepatlas.data.base import DataConfig
    from deepatlas.data.fashion_mnist import load

    for gz in (True, False):
        ds = load(DataConfig(name="fashion-mnist", path=str(make_fashion(tmp_path / str(gz), gz=gz))))
        assert ds.train["x"].shape == (6, 1, 28, 28) and ds.test["y"].shape == (3,)


TRAIN_IMAGES = "train-images-idx3-ubyte"


def _damage(folder: Path, how: str) -> None:
    path = folder / TRAIN_IMAGES
    gz = folder / (TRAIN_IMAGES + ".gz")
    raw = gzip.decompress(gz.read_bytes())
    gz.unlink()
    if how == "missing file":
        return
    if how == "truncated body":
        path.write_bytes(raw[:-100])
    elif how == "truncated header":
        path.write_bytes(raw[:9])
    elif how == "empty file":
        path.write_bytes(b"")
    elif how == "wrong magic":
        path.write_bytes(b"\x08\x03\x00\x00" + raw[4:])
    elif how == "unknown type code":
        path.write_bytes(raw[:2] + b"\x07" + raw[3:])
    elif how == "header claims more":
        path.write_bytes(raw[:4] + struct.pack(">I", 60000) + raw[8:])
    elif how == "longer than header":
        path.write_bytes(raw + b"\x00" * 10)
    elif how == "corrupt gzip":
        gz.write_bytes(gzip.compress(raw)[:40])
    elif how == "count mismatch":
        path.write_bytes(idx_bytes(np.zeros((5, 28, 28), np.uint8)))
    elif how == "a folder":
        path.mkdir()


def _fashion_args(out: Path, folder) -> list:
    """Train an image method (vae) on the Fashion-MNIST IDX files in `folder`."""
    return ["train", "vae", "--data", "fashion-mnist", "--data-path", folder, "--out", out, "--no-progress",
            "--train-steps", "1"]


@pytest.mark.parametrize("how,message", [
    ("missing file", "file not found: .*train-images-idx3-ubyte.gz; install it with `apt-get install"),
    ("truncated body", "IDX file truncated: header \\(6, 28, 28\\) needs 4704 data bytes, file has 4604"),
    ("truncated header", "truncated IDX header \\(9 bytes for 3 dimensions\\)"),
    ("empty file", "not an IDX file \\(only 0 bytes\\)"),
    ("wrong magic", "not an IDX file \\(magic bytes 08030000"),
    ("unknown type code", "not an IDX file \\(magic bytes 00000703"),
    ("header claims more", "IDX file truncated: header \\(60000, 28, 28\\)"),
    ("longer than header", "IDX file longer than its header says"),
    ("corrupt gzip", "cannot read or decompress"),
    ("count mismatch", "expected N images of HxW and N labels, got \\(5, 28, 28\\) and \\(6,\\)"),
    ("a folder", "cannot read or decompress"),
])
def test_broken_idx_files(tmp_path, capsys, tiny, how, message):
    import re

    folder = make_fashion(tmp_path / "fm")
    _damage(folder, how)
    err = error_of(_fashion_args(tmp_path / "r", folder), capsys)
    assert re.search(message, err), err


# --- text corpora, COCO JSON, OFF/PLY meshes, through the CLI ------------------------------------

def _text_file(d: Path, raw: bytes) -> Path:
    (d / "corpus.txt").write_bytes(raw)
    return d / "corpus.txt"


def _coco_file(d: Path, doc) -> Path:
    (d / "images").mkdir()
    (d / "images" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (d / "coco.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return d / "coco.json"


def _mesh_folder(d: Path, name: str, raw: bytes) -> Path:
    for split in ("train", "test"):
        (d / "cube" / split).mkdir(parents=True)
        (d / "cube" / split / name).write_bytes(raw)
    return d


IMAGES = [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "a.png"}]


@pytest.mark.parametrize("method,data,make,message", [
    ("mdlm", "text", lambda d: _text_file(d, "caf\xe9".encode("latin-1")), "is not UTF-8 text \\(byte 3\\)"),
    ("mdlm", "text", lambda d: _text_file(d, b""), "holds no text"),
    ("mdlm", "text", lambda d: _text_file(d, b"  \n\t "), "holds no text"),
    ("mdlm", "text", lambda d: _text_file(d, b"short"), "fewer than --data-seq-len"),
    ("mdlm", "text", lambda d: d / "nowhere.txt", "no such file or folder"),
    ("fcos", "coco", lambda d: _coco_file(d, "{\"images\": ["), "not valid JSON"),
    ("fcos", "coco", lambda d: _coco_file(d, []), "not a COCO annotation file"),
    ("fcos", "coco", lambda d: _coco_file(d, {"images": IMAGES, "annotations": [{"image_id": 1, "category_id": 1}],
                                              "categories": [{"id": 1}]}), "bbox None"),
    ("fcos", "coco", lambda d: _coco_file(d, {"images": IMAGES, "annotations": [], "categories": []}),
     "not a readable image"),
    ("pointnet", "pointcloud-files", lambda d: _mesh_folder(d, "a.off", b"OFF\n3 1 0\n0 0 0\n"), "declares 3 vertices"),
    ("pointnet", "pointcloud-files", lambda d: _mesh_folder(d, "a.ply", b"\xff\xfe binary junk"), "not a PLY file"),
    ("pointnet", "pointcloud-files", lambda d: _mesh_folder(d, "a.off", "OFF\n1 0 0\nnan 1 2\n".encode()),
     "not a finite"),
])
def test_bad_data_files(tmp_path, capsys, method, data, make, message):
    import re

    (tmp_path / "in").mkdir()
    path = make(tmp_path / "in")
    err = error_of(["train", method, "--data", data, "--data-path", path, "--out", tmp_path / "r", "--no-progress",
                    "--train-steps", "1"], capsys)
    assert re.search(message, err), err


def test_bad_text_file_subprocess(tmp_path):
    """The real command line: one line on stderr, nothing else."""
    bad = _text_file(tmp_path, b"\x80\x81 not utf-8")
    err = one_line_error(cli(["train", "mdlm", "--data", "text", "--data-path", str(bad), "--out", str(tmp_path / "r"),
                              "--no-progress", "--train-steps", "1"]))
    assert "is not UTF-8 text" in err


def test_a_refused_dataset_leaves_no_run_behind(tmp_path, capsys):
    """pointnet refuses toy2d (2-D points); the same --out then takes a dataset it accepts, without --fresh."""
    out = tmp_path / "r"
    err = error_of(["train", "pointnet", "--data", "toy2d", "--out", out, "--no-progress", "--train-steps", "1"], capsys)
    assert "does not take --data toy2d; it takes --data shapes3d | pointcloud-files" in err and not out.exists()
    assert main(["train", "pointnet", "--data", "shapes3d", "--data-size", "16", "--data-points", "32", "--out", str(out),
                 "--no-progress", "--train-steps", "1", "--train-batch-size", "8"]) == 0


def test_missing_idx_folder_subprocess(tmp_path):
    err = one_line_error(cli([str(a) for a in _fashion_args(tmp_path / "r", tmp_path / "nowhere")]))
    assert "fashion-mnist folder not found" in err and "--data-path" in err


def test_lying_idx_header_never_allocates_what_it_claims():
    """A header claiming 2^32-1 x 2^32-1 x 2^32-1 bytes must be refused from its size, not by allocating."""
    raw = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    with pytest.raises(Exception, match="IDX file truncated"):
        parse_idx(raw)


# --- weights and run folders ---------------------------------------------------------------------

@pytest.fixture
def trained(tmp_path, capsys, tiny) -> Path:
    run = tmp_path / "run"
    assert main(tiny_args(run, steps=3)) == 0
    capsys.readouterr()
    return run


def _only_checkpoint(run: Path) -> Path:
    (folder,) = (run / "checkpoints").glob("step-*")
    return folder


def test_corrupt_safetensors(trained, capsys):
    (_only_checkpoint(trained) / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    err = error_of(["eval", trained], capsys)
    assert "no readable checkpoint" in err and "not a readable safetensors file" in err


def test_safetensors_with_lying_header_length(trained, capsys):
    (_only_checkpoint(trained) / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    assert "not a readable safetensors file" in error_of(["eval", trained], capsys)


def test_foreign_safetensors_is_refused_for_eval_and_resume(trained, capsys):
    save_file({"conv.weight": torch.zeros(3, 3)}, str(_only_checkpoint(trained) / "model.safetensors"))
    assert "does not fit method 'tiny'" in error_of(["eval", trained], capsys)
    err = error_of(tiny_args(trained, steps=6), capsys)
    assert "does not fit this method" in err and "--fresh" in err


def test_pickled_code_in_optimizer_state_is_refused_not_run(trained, capsys, tmp_path):
    import os

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": Evil()}, _only_checkpoint(trained) / "optimizer.pt")
    err = error_of(tiny_args(trained, steps=6), capsys)
    assert "optimizer.pt: not a readable optimizer state (refused: it holds objects other than tensors)" in err
    assert not marker.exists()


def test_damaged_state_json(trained, capsys):
    (_only_checkpoint(trained) / "state.json").write_text('{"step": "three"}')
    assert "step must be a non-negative integer, got 'three'" in error_of(["eval", trained], capsys)


@pytest.mark.parametrize("content,message", [
    ("{oops", "config.json: not valid JSON"),
    ("[]", "config.json is missing or has a malformed entry"),
    (None, "train.steps"),  # filled in below: a wrong type
])
def test_broken_config_json(trained, capsys, content, message):
    cfg = trained / "config.json"
    if content is None:
        d = json.loads(cfg.read_text())
        d["train"]["steps"] = "many"
        content, message = json.dumps(d), "--steps must be of type int, got 'many'"
    cfg.write_text(content)
    assert message in error_of(["eval", trained], capsys)


def test_not_a_run_folder_and_out_is_a_file(tmp_path, capsys, tiny):
    assert "is not a run directory (no config.json)" in error_of(["eval", tmp_path], capsys)
    (tmp_path / "file").write_text("x")
    err = error_of(tiny_args(tmp_path / "file", steps=2), capsys)
    assert str(tmp_path / "file") in err


def test_no_checkpoint_yet(trained, capsys):
    shutil.rmtree(trained / "checkpoints")
    assert "has no checkpoint yet" in error_of(["eval", trained], capsys)


# --- no pickle for weights -----------------------------------------------------------------------

def test_no_pickle_load_in_the_package():
    """Every torch.load passes weights_only=True; nothing calls pickle.load or np.load with pickles."""
    import re

    import deepatlas

    calls = 0
    for path in Path(deepatlas.__file__).parent.rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            depth, i = 1, m.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            assert "weights_only=True" in text[m.end(): i], f"{path}: {text[m.start(): i]}"
            calls += 1
        assert not re.search(r"\bpickle\.loads?\(|allow_pickle\s*=\s*True|\bdill\b", text), path
    assert calls >= 1


def test_loading_runs_uses_weights_only(trained, capsys, monkeypatch):
    seen = []
    real = torch.load

    def spy(*a, **k):
        seen.append(k.get("weights_only"))
        return real(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    assert main(["eval", str(trained)]) == 0
    assert main(tiny_args(trained, steps=5)) == 0  # resume
    assert seen and all(w is True for w in seen), seen
