"""How often a finished 2-process torchrun run fails at exit, with the barrier before leaving the
process group (`distributed.leave`, the code) and without it (the group left only at exit, as before).

    python bench/torchrun_teardown.py --runs 40

Each trial is the command of tests/test_train_distributed.py::test_data_dependent_init_sees_the_global_batch
(glow on toy2d, 4 steps, 2 gloo ranks). The variants alternate, trial by trial. A failure is a non-zero exit
of torchrun; the line printed is the first of its reasons ("terminate called without an active exception").
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["train", "glow", "--data", "toy2d", "--data-size", "512", "--no-progress", "--train-steps", "4",
        "--train-log-every", "1", "--train-ckpt-every", "100", "--model-steps", "2", "--model-hidden", "16",
        "--train-batch-size", "32"]
# the old ending: no explicit leave; the process group is destroyed by the atexit hook alone
NO_BARRIER = ("import sys, deepatlas.train.distributed as d; d.leave = lambda world: None; "
              "import deepatlas.cli as c; sys.exit(c.main())")  # cli imports leave when it runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trial(barrier: bool) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as d:
        target = ["-m", "deepatlas"] if barrier else ["--no-python", sys.executable, "-c", NO_BARRIER]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *target, *ARGS,
               "--out", str(Path(d) / "run")]
        env = dict(os.environ, PYTHONPATH=str(ROOT), DEEPATLAS_DEVICE="cpu")
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    why = next((l for l in p.stderr.splitlines() if "terminate" in l or "Error" in l), "")
    return p.returncode == 0, why


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40, help="trials per variant (default: 40)")
    args = ap.parse_args()
    fails = {True: 0, False: 0}
    for i in range(args.runs):
        for barrier in (True, False):
            ok, why = trial(barrier)
            if not ok:
                fails[barrier] += 1
                print(f"trial {i} {'barrier' if barrier else 'no barrier'}: failed: {why}", flush=True)
    print(f"\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}\n")
    print("| ending | runs | failed at exit |\n|---|---|---|")
    for barrier in (True, False):
        print(f"| {'barrier, then destroy_process_group (the code)' if barrier else 'destroy at exit only (before)'} "
              f"| {args.runs} | {fails[barrier]} |")


if __name__ == "__main__":
    main()
