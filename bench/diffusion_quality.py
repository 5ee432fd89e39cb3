"""FID against network evaluations (NFE) for DDPM-eps, flow matching and EDM models trained with the same
U-Net, data, steps, batch and seed; every sampler on each model. Each row has FID and KID beside their
real-vs-real floors at the same n (deepatlas.eval.fid) and the sampling speed. All models are trained
first, then the grid runs sampler by sampler over the models, so a cut-short run still has whole rows.
Resumable: trained runs are reused and finished (model, sampler, steps, n) rows are kept in the JSON file.

    python bench/diffusion_quality.py --data digits --steps 3000 --out bench/out/diffusion-digits
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.eval.fid import fid_against_test
from deepatlas.registry import get
from deepatlas.train.config import TrainConfig
from deepatlas.train.run import RunConfig, build_method, start_run
from deepatlas.train.trainer import fit

# (sampler, steps): DDPM 1000 / DDIM 10, 20, 50 / Euler 9, 17, 35 NFE / Heun 9, 17, 35 NFE / DPM-Solver++ 10, 20
GRID = [("ddpm", 1000), ("ddim", 10), ("ddim", 20), ("ddim", 50), ("euler", 9), ("euler", 17), ("euler", 35),
        ("heun", 5), ("heun", 9), ("heun", 18), ("dpmpp-2m", 10), ("dpmpp-2m", 20)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--mult", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n-fid", type=int, default=0, help="samples for FID (0: the test-set size)")
    ap.add_argument("--methods", nargs="+", default=["ddpm", "flow", "edm"])
    ap.add_argument("--skip", nargs="*", default=[], help="sampler names to skip, e.g. ddpm")
    ap.add_argument("--only", nargs="*", default=[], help="only these sampler:steps settings, e.g. heun:18")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"rows": [], "train": {}}
    done = {(r["method"], r["sampler"], r["steps"], r.get("n")) for r in results["rows"]}
    data = load_dataset(DataConfig(name=args.data))
    n_fid = args.n_fid or len(data.test)
    results["setup"] = {"data": args.data, "train_steps": args.steps, "batch": args.batch, "channels": args.channels,
                        "mult": args.mult, "n_fid": n_fid, "n_reference": len(data.test),
                        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
                        "torch": torch.__version__}
    from deepatlas.train.run import open_run

    methods = {}
    for name in args.methods:
        spec = get("method", name).obj
        mcfg = spec.Config(channels=args.channels, channel_mult=tuple(args.mult))
        tcfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=2e-3, warmup=100, lr_decay="cosine",
                           ckpt_every=500, seed=0)
        cfg = RunConfig(name, DataConfig(name=args.data), mcfg, tcfg)
        run = args.out / name
        start_run(run, cfg)
        torch.manual_seed(0)
        method = build_method(cfg, data)
        t0 = time.perf_counter()
        fit(method, data, tcfg, run, progress=False)
        if name not in results["train"]:
            results["train"][name] = {"seconds": round(time.perf_counter() - t0, 1),
                                      "params": sum(p.numel() for p in method.parameters())}
            results_path.write_text(json.dumps(results, indent=1))
        methods[name] = open_run(run)[0]
    for sampler, steps in GRID:
        if sampler in args.skip or (args.only and f"{sampler}:{steps}" not in args.only):
            continue
        for name, method in methods.items():
            if (name, sampler, steps, n_fid) in done:
                continue
            g = torch.Generator().manual_seed(1)
            t1 = time.perf_counter()
            x = torch.cat([method.sample(min(250, n_fid - i), g, method.SampleConfig(sampler=sampler, steps=steps))
                           for i in range(0, n_fid, 250)])
            secs = time.perf_counter() - t1
            m = fid_against_test(x, data)
            row = {"method": name, "sampler": sampler, "steps": steps, "nfe": method.nfe(sampler, steps), "n": n_fid,
                   "fid": round(m["fid"], 3), "fid_real": round(m["fid_real"], 3),
                   "kid": round(m["kid"], 5), "kid_real": round(m["kid_real"], 5),
                   "feature_acc": round(m["feature_classifier_test_acc"], 4), "feature_dim": m["feature_dim"],
                   "sample_seconds": round(secs, 1), "samples_per_s": round(n_fid / secs, 2)}
            results["rows"].append(row)
            results_path.write_text(json.dumps(results, indent=1))
            print(json.dumps(row), flush=True)

if __name__ == "__main__":
    main()
