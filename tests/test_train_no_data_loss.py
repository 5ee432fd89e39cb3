"""Nothing a user owns is lost: `--fresh` deletes only a deepatlas run, `train` never mixes into a folder
that is not one, a damaged newest checkpoint is never skipped silently, and RUN/model.safetensors is a
copy that an edit cannot turn into a damaged checkpoint."""

import json
import os
from pathlib import Path

import pytest
from cli_runner import tiny_args

from deepatlas import registry
from deepatlas.cli import main
from deepatlas.train.checkpoint import Checkpointer


@pytest.fixture
def tiny():
    import tiny_cli

    registry._TABLES["method"]["tiny"] = registry.Entry("tiny", "test", "test-only", tiny_cli.Tiny)
    yield tiny_cli.Tiny
    registry._TABLES["method"].pop("tiny", None)


def run_cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def refused(argv, capsys) -> str:
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("deepatlas: error: "), err
    return err


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "thesis.tex").write_text("years of work")
    (path / "data").mkdir(exist_ok=True)
    (path / "data" / "img.png").write_bytes(b"\x89PNG")
    return path


def test_fresh_refuses_a_folder_that_is_not_a_run(tmp_path, capsys, tiny):
    home = user_folder(tmp_path / "home")
    err = refused(tiny_args(home, "--fresh", steps=2), capsys)
    assert "holds no deepatlas run" in err and "--fresh deletes only deepatlas runs" in err
    assert (home / "thesis.tex").read_text() == "years of work" and (home / "data" / "img.png").exists()
    assert not (home / "config.json").exists()


def test_train_refuses_a_non_empty_folder_that_is_not_a_run(tmp_path, capsys, tiny):
    home = user_folder(tmp_path / "home")
    assert "is not empty and holds no deepatlas run" in refused(tiny_args(home, steps=2), capsys)
    assert sorted(p.name for p in home.iterdir()) == ["data", "thesis.tex"]
    # a foreign config.json is not a run either
    (home / "config.json").write_text(json.dumps({"lr": 0.1}))
    assert "holds no deepatlas run" in refused(tiny_args(home, "--fresh", steps=2), capsys)
    assert json.loads((home / "config.json").read_text()) == {"lr": 0.1}


def test_out_dot(tmp_path, capsys, tiny, monkeypatch):
    home = user_folder(tmp_path / "home")
    monkeypatch.chdir(home)
    for extra in ((), ("--fresh",)):
        assert "holds no deepatlas run" in refused(tiny_args(Path("."), *extra, steps=2), capsys)
    assert sorted(p.name for p in home.iterdir()) == ["data", "thesis.tex"]
    # an empty current folder becomes a run, and --fresh on it deletes the run but not the folder
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert run_cli(tiny_args(Path("."), steps=2), capsys)[0] == 0
    (empty / "notes.txt").write_text("mine")
    code, err = run_cli(tiny_args(Path("."), "--fresh", steps=3), capsys)
    assert code == 0, err
    assert "kept files it did not write: notes.txt" in err
    assert empty.is_dir() and (empty / "notes.txt").read_text() == "mine"
    assert Checkpointer(empty).load().step == 3


def test_fresh_on_a_run_restarts_it_and_keeps_the_users_files(tmp_path, capsys, tiny):
    run = tmp_path / "run"
    assert run_cli(tiny_args(run, steps=20), capsys)[0] == 0
    (run / "my-notes.md").write_text("keep me")
    code, _ = run_cli(tiny_args(run, "--fresh", "--train-lr", "0.02", steps=10), capsys)
    assert code == 0
    assert (run / "my-notes.md").read_text() == "keep me"
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 0.02
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(x["step"] for x in lines) == 10  # the old run's 20 steps are gone, not appended to
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-00000010"]


def two_checkpoints(tmp_path, capsys) -> Path:
    run = tmp_path / "run"
    assert run_cli(tiny_args(run, steps=20), capsys)[0] == 0  # checkpoints at 10 and 20
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-00000010", "step-00000020"]
    return run


def test_a_damaged_newest_checkpoint_is_said_on_eval_and_refused_on_resume(tmp_path, capsys, tiny):
    run = two_checkpoints(tmp_path, capsys)
    (run / "checkpoints" / "step-00000020" / "model.safetensors").write_bytes(b"garbage")
    code, err = run_cli(["eval", run, "--n", "8"], capsys)
    assert code == 0
    (line,) = [x for x in err.splitlines() if "warning" in x]
    assert "step-00000020" in line and "not a readable safetensors file" in line and "fell back to step 10" in line
    assert json.loads((run / "eval.json").read_text())["step"] == 10

    err = refused(tiny_args(run, steps=30), capsys)
    assert "fell back to step 10" in err and "--resume-older" in err
    assert (run / "checkpoints" / "step-00000020").is_dir()  # nothing was touched

    code, err = run_cli(tiny_args(run, "--resume-older", steps=30), capsys)
    assert code == 0, err
    assert "resuming from there" in err
    assert (run / "checkpoints" / "damaged-step-00000020" / "model.safetensors").read_bytes() == b"garbage"
    assert Checkpointer(run).load().step == 30


def test_the_newest_complete_checkpoint_wins_over_a_stale_latest_pointer(tmp_path, capsys, tiny):
    """A crash between renaming the new folder and updating `latest` must not lose the new checkpoint."""
    run = two_checkpoints(tmp_path, capsys)
    (run / "checkpoints" / "latest").write_text("step-00000010\n")
    saved = Checkpointer(run).load()
    assert saved.step == 20 and not saved.skipped


def test_top_level_weights_are_a_copy_not_a_link(tmp_path, capsys, tiny):
    run = two_checkpoints(tmp_path, capsys)
    top, inside = run / "model.safetensors", run / "checkpoints" / "step-00000020" / "model.safetensors"
    assert top.read_bytes() == inside.read_bytes()
    assert os.stat(top).st_nlink == 1 and not os.path.samefile(top, inside)
    with open(top, "r+b") as f:  # a user edits the published file in place
        f.write(b"\x00" * 16)
    saved = Checkpointer(run).load()
    assert saved.step == 20 and not saved.skipped
