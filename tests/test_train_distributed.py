"""Data-parallel training under torchrun: 2 CPU processes on gloo (127.0.0.1 only).

Oracle: with a loss that draws no random numbers (the `tiny` test method, noise 0), the gradient of
the global batch is the mean of the per-rank gradients, so 2 processes x batch B must follow 1 process
x batch 2B up to float rounding (summation order). Per-rank noise (diffusion methods draw their own
noise on each rank) would make the two runs differ in their random draws, not in distribution.
"""

import json

import pytest
import torch
from cli_runner import cli, tiny_args, torchrun
from safetensors.torch import load_file

from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.metrics import read_metrics
from deepatlas.train.trainer import step_seed


def _events(path):
    return path.read_text().split("\n")[:-1] if path.exists() else []


def _per_step(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process with batch 16 for 30 steps; two processes with batch 8 for 20 steps, then resumed to 30."""
    tmp = tmp_path_factory.mktemp("dp")
    one = cli(tiny_args(tmp / "one", batch=16), tiny=True, DEEPATLAS_TEST_EVENTS=str(tmp / "ev1"))
    assert one.returncode == 0, one.stderr
    first = torchrun(tiny_args(tmp / "two", batch=8, steps=20), DEEPATLAS_TEST_EVENTS=str(tmp / "ev2"))
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = torchrun(tiny_args(tmp / "two", batch=8), DEEPATLAS_TEST_EVENTS=str(tmp / "ev2"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return tmp, first, resumed


def test_two_processes_follow_one_process_with_twice_the_batch(runs):
    tmp, _, _ = runs
    a = read_metrics(tmp / "one" / "metrics.jsonl")
    b = read_metrics(tmp / "two" / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 31))  # one line per step: only rank 0 logs, resume trimmed
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5, abs=1e-7), ra["step"]
        assert rb["grad_norm"] == pytest.approx(ra["grad_norm"], rel=1e-4, abs=1e-6), ra["step"]
    wa, wb = load_file(str(tmp / "one" / "model.safetensors")), load_file(str(tmp / "two" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-6, msg=k)
    assert b[0]["loss"] != b[-1]["loss"]  # it did train


def test_batches_are_sharded_and_seeded_per_rank(runs):
    tmp, _, _ = runs
    single = _per_step(tmp / "ev1.rank0")
    r0, r1 = _per_step(tmp / "ev2.rank0"), _per_step(tmp / "ev2.rank1")
    assert len(r0) == len(r1) == 30  # 20 steps, then 10 more after the resume
    for s in range(30):
        assert r0[s]["call"] == r1[s]["call"] == s + 1  # the step counter buffer came back on both ranks
        assert len(r0[s]["rows"]) == len(r1[s]["rows"]) == 8
        assert r0[s]["rows"] + r1[s]["rows"] == single[s]["rows"]  # the two halves of the global batch
        assert r0[s]["seed"] == step_seed(0, s, stream=2) and r1[s]["seed"] == step_seed(0, s, stream=3)
        assert single[s]["seed"] == step_seed(0, s, stream=2)


def test_only_rank_zero_writes(runs):
    tmp, first, resumed = runs
    ev = _events(tmp / "ev2")
    assert ev.count("start 1") == 2 and ev.count("start 21") == 2  # both ranks trained, twice
    writes = [e for e in ev if e.startswith(("writing", "saved"))]
    assert writes == ["writing 10", "saved 10", "writing 20", "saved 20", "writing 30", "saved 30"]
    samples = sorted(p.name for p in (tmp / "two" / "samples").iterdir())
    assert samples == ["step-10-rank-0.txt", "step-20-rank-0.txt", "step-30-rank-0.txt"]
    assert first.stdout.count("run saved in") == 1 and resumed.stdout.count("run saved in") == 1
    assert Checkpointer(tmp / "two").load().step == 30


@pytest.mark.slow
def test_failure_on_one_rank_stops_every_rank(runs, tmp_path):
    """A NaN on rank 1 only: both ranks stop at the same step, the message names it, the checkpoint is intact."""
    tmp, _, _ = runs
    out = tmp_path / "nan"
    p = torchrun(tiny_args(out, "--model-nan-at", "15", "--model-nan-rank", "1", batch=8), timeout=120)
    assert p.returncode != 0
    assert "loss became non-finite on 1 of 2 processes at step 15 (model)" in p.stderr
    assert "loss became nan on 1 of 2 processes at step 15" in p.stderr
    assert "checkpoint of step 10 is intact" in p.stderr
    assert Checkpointer(out).load().step == 10
    # rank 0 refuses a conflicting config: the other rank does not wait for it forever
    p = torchrun(tiny_args(tmp / "two", "--train-lr", "0.5", batch=8), timeout=120)
    assert p.returncode != 0
    assert "holds a different run: train.lr (saved 0.01, now 0.5)" in p.stderr
    assert "rank 0 failed while checking the run directory" in p.stderr


@pytest.mark.slow
def test_two_optimizer_phases_follow_one_process(tmp_path):
    """A GAN-like method (two optimizers, two backward passes per step): still 2 x B == 1 x 2B."""
    one = cli(tiny_args(tmp_path / "one", "--model-phases", "2", batch=16, steps=15), tiny=True)
    assert one.returncode == 0, one.stderr
    two = torchrun(tiny_args(tmp_path / "two", "--model-phases", "2", batch=8, steps=15))
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = read_metrics(tmp_path / "one" / "metrics.jsonl"), read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert len(a) == len(b) == 15
    for ra, rb in zip(a, b):
        for k in ("loss", "head_loss", "grad_norm", "head_grad_norm"):
            assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-6), (ra["step"], k)


def test_data_dependent_init_sees_the_global_batch(tmp_path):
    """Glow's actnorm sets itself from the first batch: 2 x B must pick the values 1 x 2B picks, or the
    replicas start apart (each from its own half) and the runs diverge from the first step."""
    args = ["train", "glow", "--data", "toy2d", "--data-size", "512", "--no-progress", "--train-steps", "4",
            "--train-log-every", "1", "--train-ckpt-every", "100", "--model-steps", "2", "--model-hidden", "16"]
    one = cli([*args, "--out", str(tmp_path / "one"), "--train-batch-size", "64"])
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun([*args, "--out", str(tmp_path / "two"), "--train-batch-size", "32"], tiny=False)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = read_metrics(tmp_path / "one" / "metrics.jsonl"), read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-4, abs=1e-5), ra["step"]


FAMILY_RUNS = [  # one or more methods of every family, on a dataset it takes
    ("edm", "digits"), ("mdlm", "text"), ("ar", "text"), ("ngram", "text"), ("gan", "digits"), ("vae", "digits"),
    ("glow", "digits"), ("made", "digits --data-binarize"), ("simclr", "digits"), ("fcos", "scenes"),
    ("pointnet", "shapes3d"), ("classifier", "imbalanced"),
]


@pytest.mark.slow
@pytest.mark.parametrize("method,data", FAMILY_RUNS, ids=[m for m, _ in FAMILY_RUNS])
def test_torchrun_trains_every_family(tmp_path, method, data):
    out = tmp_path / "r"
    seq_len = ["--data-seq-len", "32"] if data == "text" else []  # a flag only text datasets read
    p = torchrun(["train", method, "--data", *data.split(), "--data-size", "64", *seq_len,
                  "--out", str(out), "--no-progress", "--train-steps", "2", "--train-batch-size", "4",
                  "--train-log-every", "1"], tiny=False, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("run saved in") == 1  # rank 0 alone reports and writes
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2]
    assert Checkpointer(out).load().step == 2


@pytest.mark.slow
def test_torchrun_module_entry_with_a_real_method(tmp_path):
    """`torchrun -m deepatlas train flow --data toy2d`: the library's own entry point and method."""
    out = tmp_path / "flow"
    p = torchrun(["train", "flow", "--data", "toy2d", "--out", str(out), "--no-progress", "--train-steps", "12",
                  "--train-batch-size", "32", "--train-ckpt-every", "6", "--train-log-every", "3",
                  "--model-hidden", "32", "--model-depth", "1"], tiny=False)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("run saved in") == 1
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [3, 6, 9, 12]
    assert Checkpointer(out).load().step == 12
    assert sorted(x.name for x in (out / "checkpoints").iterdir()) == ["latest", "step-00000006", "step-00000012"]


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_after_the_same_step(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from cli_runner import ROOT, TINY, env, free_port

    events = tmp_path / "ev"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), TINY,
           *tiny_args(tmp_path / "run", "--train-ckpt-every", "1000", batch=8, steps=1000)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(DEEPATLAS_TEST_EVENTS=str(events), DEEPATLAS_TEST_STEP_SLEEP="0.02"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if events.exists() and events.read_text().count("start") == 2:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stops = [l for l in err.splitlines() if l.startswith("deepatlas: stopped by SIGTERM at step ")]
    assert len(stops) == 2 and stops[0] == stops[1], err[-3000:]  # both ranks, the same step
    step = int(stops[0].split("at step ")[1].split(";")[0])
    assert Checkpointer(tmp_path / "run").load().step == step
    assert read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]["step"] == step
