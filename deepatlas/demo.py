"""`deepatlas demo`: the first five minutes. Trains the default diffusion model (EDM preconditioning,
small U-Net) on the embedded 8x8 digits, then writes a sample grid, a denoising trajectory and the FID
against the held-out digits. Re-running resumes (or reuses) the run in --out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.train.atomic import write_json_atomic
from deepatlas.train.config import TrainConfig
from deepatlas.train.run import RunConfig, build_method, start_run
from deepatlas.train.trainer import fit

DEMO_STEPS = 2000


def run_demo(out: Path, steps: int | None = None, fresh: bool = False, resume_older: bool = False) -> int:
    from deepatlas.registry import get

    out = Path(out)
    spec = get("method", "edm").obj
    cfg = RunConfig("edm", DataConfig(name="digits"), spec.Config(),
                    TrainConfig(steps=steps or DEMO_STEPS, batch_size=128, lr=2e-3, warmup=100, ckpt_every=500,
                                lr_decay="cosine"))
    print(f"deepatlas demo: training EDM diffusion ({cfg.train.steps} steps) on 8x8 digits -> {out}")
    start_run(out, cfg, fresh=fresh)
    data = load_dataset(cfg.data)
    method = build_method(cfg, data)
    t0 = time.perf_counter()
    fit(method, data, cfg.train, out, resume_older=resume_older)
    train_s = time.perf_counter() - t0

    from deepatlas.train.run import open_run

    method, data, _, step = open_run(out)  # EMA weights
    _, (grid, _) = method.sample_files(64, torch.Generator().manual_seed(0), method.sample_defaults(),
                                       out / "samples" / "demo.png")
    print("evaluating FID (trains the cached digits feature classifier on first use)...")
    t1 = time.perf_counter()
    torch.manual_seed(0)
    metrics = method.evaluate(data, len(data.test), torch.Generator().manual_seed(0))
    metrics.update({"step": step, "train_seconds_this_call": round(train_s, 1),
                    "eval_seconds": round(time.perf_counter() - t1, 1)})
    write_json_atomic(out / "eval.json", metrics)
    print(json.dumps(metrics, indent=2))
    from deepatlas.report.html import build_report

    print(f"samples: {grid}\ntrajectory: {grid.with_name('demo-trajectory.png')}\nmetrics: {out / 'eval.json'}\n"
          f"report: {build_report(out)}")
    return 0
