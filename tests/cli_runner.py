"""Helpers for tests that run the real CLI in subprocesses (plain, under torchrun, or killed midway)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = str(Path(__file__).with_name("tiny_cli.py"))


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", DEEPATLAS_DEVICE="cpu")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        e.pop(k, None)
    e.update(extra)
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_args(out: Path, *extra: str, steps: int = 30, batch: int = 16) -> list[str]:
    """`train tiny` on 256 toy points, logging every step."""
    return ["train", "tiny", "--data", "toy2d", "--data-size", "256", "--out", str(out), "--no-progress",
            "--train-steps", str(steps), "--train-batch-size", str(batch), "--train-log-every", "1",
            "--train-ckpt-every", "10", "--train-lr", "0.01", "--train-warmup", "2", *extra]


def cli(args: list[str], *, tiny: bool = False, timeout: float = 120, **env_extra: str) -> subprocess.CompletedProcess:
    """`python -m deepatlas ARGS` (or the CLI with the test method registered when tiny=True)."""
    cmd = [sys.executable, TINY] if tiny else [sys.executable, "-m", "deepatlas"]
    return subprocess.run(cmd + list(args), cwd=ROOT, env=env(**env_extra), capture_output=True, text=True,
                          timeout=timeout)


def torchrun(args: list[str], nproc: int = 2, *, tiny: bool = True, timeout: float = 180,
             **env_extra: str) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node N` on 127.0.0.1 with a free port, gloo backend on CPU."""
    target = [TINY] if tiny else ["-m", "deepatlas"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), *target, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env(**env_extra), capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The stderr of a failed CLI call, asserted to be a single `deepatlas: error:` line."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("deepatlas: error: "), err
    return err
