"""Data-parallel throughput on this machine: the same training command as 1 process (1 and 2 torch
threads) and as 2 processes under torchrun (gloo, 1 thread each), at the same global batch.

    nice -n 10 python bench/distributed.py [--quick]

Speed is the trainer's own steps/s (metrics.jsonl, start-up excluded: the first logged window is
dropped), reported as examples/s of the global batch. Prints a markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = {
    # name: (CLI args without --out and batch, global batch, steps, log_every)
    "flow, toy2d, MLP 256x4": (["train", "flow", "--data", "toy2d"], 256, 600, 100),
    "edm, digits 8x8, U-Net 32ch": (["train", "edm", "--data", "digits"], 64, 90, 15),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], batch: int, steps: int, log_every: int, procs: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        common = [*args, "--out", str(out), "--no-progress", "--train-steps", str(steps),
                  "--train-log-every", str(log_every), "--train-ckpt-every", str(10 * steps),
                  "--train-batch-size", str(batch // procs), "--train-threads", str(threads)]
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads), DEEPATLAS_DEVICE="cpu")
        if procs == 1:
            cmd = [sys.executable, "-m", "deepatlas", *common]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(procs),
                   "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), "-m", "deepatlas", *common]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(p.stderr[-2000:])
        rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["steps_per_s"] for r in rows[1:]]  # drop the first window (start-up, first allocations)
    sps = statistics.median(rates)
    return {"steps_per_s": sps, "examples_per_s": sps * batch, "wall_s": wall, "final_loss": rows[-1]["loss"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a third of the steps")
    opts = ap.parse_args()
    import torch

    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load average before: {os.getloadavg()[0]:.1f}, date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print()
    print("| workload | global batch | setup | steps/s | examples/s | vs 1 proc x 1 thread | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name, (args, batch, steps, log_every) in WORKLOADS.items():
        if opts.quick:
            steps, log_every = steps // 3, max(log_every // 3, 1)
        base = None
        for procs, threads, label in ((1, 1, "1 process, 1 thread"), (1, 2, "1 process, 2 threads"),
                                      (2, 1, "2 processes (gloo), 1 thread each")):
            r = run(args, batch, steps, log_every, procs, threads)
            base = base or r["examples_per_s"]
            print(f"| {name} | {batch} | {label} | {r['steps_per_s']:.2f} | {r['examples_per_s']:.0f} | "
                  f"{r['examples_per_s'] / base:.2f}x | {r['wall_s']:.0f} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
