"""Faults survived, driving the real CLI in subprocesses: SIGKILL at random moments (some inside a
checkpoint write), SIGINT/SIGTERM, NaN/Inf, a full disk, a conflicting config on resume.

The oracle for every interrupted run is the same run left alone: the trainer seeds each step from
(seed, step), so a run resumed from any checkpoint must end with bit-identical weights.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_runner import ROOT, TINY, cli, env, one_line_error, tiny_args
from safetensors.torch import load_file

from deepatlas.errors import TrainingDiverged
from deepatlas.method import Method
from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.config import TrainConfig
from deepatlas.train.metrics import read_metrics
from deepatlas.train.trainer import fit

STEPS = 40
# noise > 0: the loss draws random numbers, so a resume must also restore the random stream exactly
ARGS = ("--model-noise", "0.1", "--train-ckpt-every", "5", "--train-keep", "2")


def _args(out: Path) -> list[str]:
    return tiny_args(out, *ARGS, steps=STEPS)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    p = cli(_args(out), tiny=True)
    assert p.returncode == 0, p.stderr
    return out


def assert_same_run(run: Path, reference: Path) -> None:
    a, b = load_file(str(reference / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    def numbers(path):  # everything logged but the speed
        return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in read_metrics(path / "metrics.jsonl")]

    assert numbers(run) == numbers(reference)
    assert not [p.name for p in (*run.iterdir(), *(run / "checkpoints").iterdir()) if ".tmp" in p.name]


def _events(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


def _wait_for(path: Path, line: str, proc: subprocess.Popen, timeout: float = 60) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(e.startswith(line) for e in _events(path)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    raise TimeoutError(f"no '{line}' in {path}")


def kill_trial(tmp: Path, reference: Path, rng: random.Random, during_write: bool) -> dict:
    """Start a run, SIGKILL it at a random moment, check the last completed checkpoint loads, resume,
    and compare with the uninterrupted run."""
    run, events = tmp / "run", tmp / "events"
    hooks = dict(DEEPATLAS_TEST_EVENTS=str(events), DEEPATLAS_TEST_STEP_SLEEP="0.01",
                 DEEPATLAS_TEST_SLOW_WRITES="0.02")
    proc = subprocess.Popen([sys.executable, TINY, *_args(run)], cwd=ROOT, env=env(**hooks),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if during_write:  # inside the write of a randomly chosen checkpoint
            target = rng.choice(range(5, STEPS + 1, 5))
            if _wait_for(events, f"writing {target}", proc):
                time.sleep(rng.uniform(0, 0.15))  # a checkpoint write takes ~0.15 s with the slow writer
        elif _wait_for(events, "start", proc):  # anywhere in the ~1.5 s of training
            time.sleep(rng.uniform(0, 1.6))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    ev = _events(events)
    saved = [int(e.split()[1]) for e in ev if e.startswith("saved")]
    writing = [int(e.split()[1]) for e in ev if e.startswith("writing")]
    loaded = Checkpointer(run).load()  # must not raise, whatever the kill left
    if saved:
        assert loaded is not None and loaded.step >= saved[-1], (saved, loaded and loaded.step)
    p = cli(_args(run), tiny=True)  # the same command resumes
    assert p.returncode == 0, p.stderr
    assert_same_run(run, reference)
    return {"killed": proc.returncode == -signal.SIGKILL, "in_write": bool(writing) and writing[-1] not in saved,
            "resumed_from": loaded.step if loaded else 0}


def _trials(tmp_path, reference, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    results = []
    for i in range(n):
        d = tmp_path / f"t{i}"
        d.mkdir()
        results.append(kill_trial(d, reference, rng, during_write=i % 2 == 1))
        shutil.rmtree(d)
    return results


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, reference):
    results = _trials(tmp_path, reference, 2, seed=1)  # one anywhere, one inside a checkpoint write
    assert all(r["killed"] for r in results)


@pytest.mark.slow
def test_sigkill_many_trials(tmp_path, reference):
    n = int(os.environ.get("DEEPATLAS_KILL_TRIALS", "24"))
    results = _trials(tmp_path, reference, n, seed=2)
    killed = sum(r["killed"] for r in results)
    in_write = sum(r["in_write"] for r in results)
    print(f"\nkill trials: {n} tried, {n} survived (final weights bit-identical); {killed} killed mid-run, "
          f"{in_write} inside a checkpoint write; resumed from steps {[r['resumed_from'] for r in results]}")
    assert in_write >= n // 4


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_stop_signal_writes_checkpoint_and_resumes(tmp_path, reference, sig):
    run, events = tmp_path / "run", tmp_path / "events"
    proc = subprocess.Popen([sys.executable, TINY, *_args(run)], cwd=ROOT, text=True,
                            env=env(DEEPATLAS_TEST_EVENTS=str(events), DEEPATLAS_TEST_STEP_SLEEP="0.03"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert _wait_for(events, "start", proc)
    time.sleep(0.25)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    name = signal.Signals(sig).name
    step = int(err.split(f"stopped by {name} at step ")[1].split(";")[0])
    assert 0 < step < STEPS and "checkpoint saved" in err
    assert Checkpointer(run).load().step == step  # the checkpoint of the very step it stopped at
    assert read_metrics(run / "metrics.jsonl")[-1]["step"] == step
    p = cli(_args(run), tiny=True)
    assert p.returncode == 0, p.stderr
    assert_same_run(run, reference)


def test_nan_stops_naming_the_step(tmp_path):
    run = tmp_path / "run"
    err = one_line_error(cli(tiny_args(run, "--model-nan-at", "13", "--train-ckpt-every", "5"), tiny=True))
    assert "loss became nan at step 13 (model); stopped, the checkpoint of step 10 is intact" in err
    saved = Checkpointer(run).load()
    assert saved.step == 10
    assert all(torch.isfinite(v).all() for v in saved.weights.values() if v.is_floating_point())


class _Bad(Method):
    """A one-parameter method whose loss is Inf (mode 'inf') or finite with a NaN gradient ('grad')."""

    def __init__(self, mode):
        super().__init__(None, None)
        self.mode = mode
        self.w = torch.nn.Parameter(torch.ones(3))

    def loss(self, batch):
        if self.mode == "inf" and int(batch["i"][0]) >= 0:
            return {"loss": self.w.sum() * float("inf")}
        return {"loss": (self.w ** 2).sum() + (self.w * 0).abs().sqrt().sum()}  # d sqrt(|0|) = inf * 0


@pytest.mark.parametrize("mode,what", [("inf", "loss became inf"), ("grad", "gradient norm became nan")])
def test_inf_loss_and_nan_gradient_stop(tmp_path, mode, what):
    from deepatlas.data.base import DataInfo, Dataset, TensorData

    data = Dataset("idx", DataInfo("vector", (1,)), TensorData(i=torch.arange(10)), TensorData(i=torch.arange(2)))
    method = _Bad(mode)
    with pytest.raises(TrainingDiverged, match=f"{what} at step 1 .*no checkpoint was written yet"):
        fit(method, data, TrainConfig(steps=5, batch_size=2, warmup=0), tmp_path, progress=False)
    assert torch.equal(method.w.detach(), torch.ones(3))  # the bad step was not applied


def _can_mount_tmpfs() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs `unshare -rm` to mount a small tmpfs")
def test_disk_full_keeps_previous_checkpoint(tmp_path):
    """A 448 KiB tmpfs holds one checkpoint of a width-128 model (~290 KB) but not a second beside it.
    Inside the same mount namespace: train until the disk fills, check what is left, grow the disk,
    resume; the result must equal a run on a big disk."""
    mnt, keep = tmp_path / "mnt", tmp_path / "kept"
    mnt.mkdir()
    opts = ("--model-width", "128", "--train-ckpt-every", "10", "--train-keep", "1")
    args = tiny_args(mnt / "run", *opts, steps=25)
    ref = cli(tiny_args(tmp_path / "ref", *opts, steps=25), tiny=True)
    assert ref.returncode == 0, ref.stderr
    py = f"{sys.executable} {TINY} " + " ".join(args)
    check = (f"{sys.executable} -c 'from deepatlas.train.checkpoint import Checkpointer as C; "
             f"print(\"loaded\", C(\"{mnt}/run\").load().step)'")
    script = "\n".join([
        f"mount -t tmpfs -o size=448k none {mnt} || exit 9",
        f"{py} 2>&1; echo rc=$?",
        check,
        f"ls -a {mnt}/run/checkpoints",
        f"mount -o remount,size=4m {mnt}",
        f"{py} >/dev/null 2>&1; echo resumed_rc=$?",
        f"cp {mnt}/run/model.safetensors {keep}",
    ])
    p = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, env=env(), capture_output=True, text=True,
                       timeout=120)
    out = p.stdout
    assert "rc=2" in out, out + p.stderr
    err = [l for l in out.splitlines() if l.startswith("deepatlas: error:")]
    assert len(err) == 1 and "Traceback" not in out, out
    assert "could not write the checkpoint of step 20" in err[0] and "the disk is full" in err[0], err
    assert "the checkpoint of step 10 is intact" in err[0], err
    assert "loaded 10" in out, out
    assert ".tmp" not in out.split("loaded 10")[1].split("resumed_rc")[0], out  # no half-written folder left
    assert "resumed_rc=0" in out, out
    a, b = load_file(str(tmp_path / "ref" / "model.safetensors")), load_file(str(keep))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_conflicting_config_is_refused(tmp_path):
    run = tmp_path / "run"
    assert cli(tiny_args(run, steps=5), tiny=True).returncode == 0
    err = one_line_error(cli(tiny_args(run, "--model-width", "16", "--train-lr", "0.02", steps=5), tiny=True))
    assert "holds a different run: model.width (saved 32, now 16), train.lr (saved 0.01, now 0.02)" in err
    assert "--fresh" in err
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 0.01  # untouched
    # extending a run (more steps) is not a conflict
    assert cli(tiny_args(run, steps=8), tiny=True).returncode == 0
    assert Checkpointer(run).load().step == 8
