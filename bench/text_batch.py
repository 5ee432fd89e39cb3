"""Which batch a text model should train with by default: test bits/char after the same CPU-time budget
at several batch sizes (128-character sequences of the default corpus, 1 thread).

    OMP_NUM_THREADS=1 python bench/text_batch.py --methods ar bd3lm --batches 128 32 16 --budget 180

Each run is the method's default configuration (model, lr 1e-3, warm-up, constant rate) with only the batch
changed, trained through the shared trainer in chunks until the process has spent `--budget` CPU seconds
(time.process_time; each chunk resumes the last checkpoint, which repeats an uninterrupted run exactly).
Then `evaluate` gives the test bits/char on `--test` sequences (a bound, with the method's Monte-Carlo
draws, for the diffusion models). Evaluation time is not counted. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import torch

from deepatlas import config as C
from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.registry import get, load_all
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit


def run(method: str, batch: int, budget_s: float, test: int, out: Path, seed: int) -> dict:
    spec = get("method", method).obj
    data = load_dataset(C.from_dict(DataConfig, spec.defaults.get("data", {})))
    torch.manual_seed(seed)
    m = spec(C.from_dict(spec.Config, spec.defaults.get("model", {})), data.info)
    train = {**spec.defaults.get("train", {}), "batch_size": batch, "seed": seed, "threads": 1,
             "ckpt_every": 10**9}
    folder = out / f"{method}-b{batch}"
    shutil.rmtree(folder, ignore_errors=True)
    spent, steps, per_step, last = 0.0, 0, 0.0, {}
    while spent < budget_s:
        chunk = 10 if not per_step else max(5, math.ceil((budget_s - spent) / per_step))
        cfg = C.from_dict(TrainConfig, {**train, "steps": steps + chunk, "log_every": min(50, chunk)})
        t0 = time.process_time()
        last = fit(m, data, cfg, folder, progress=False)
        dt = time.process_time() - t0
        spent, steps, per_step = spent + dt, steps + chunk, dt / chunk
    res = m.evaluate(data, test, torch.Generator().manual_seed(seed))
    return {"method": method, "batch": batch, "steps": steps, "train_cpu_s": round(spent, 1),
            "sequences_seen": steps * batch, "train_loss": last.get("loss"),
            "test_bits_per_char": res["bits_per_char"], "bound": res["bound"], "test_sequences": res["test_sequences"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=["ar", "bd3lm"])
    ap.add_argument("--batches", nargs="+", type=int, default=[128, 32, 16])
    ap.add_argument("--budget", type=float, default=180.0, help="training CPU seconds per run (default: 180)")
    ap.add_argument("--test", type=int, default=256, help="test sequences evaluated (default: 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-text-batch"))
    ap.add_argument("--jsonl", type=Path, default=None, help="append each result here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_all()
    rows = []
    for method in args.methods:
        for batch in args.batches:
            r = run(method, batch, args.budget, args.test, args.out, args.seed)
            rows.append(r)
            print(json.dumps(r), flush=True)
            if args.jsonl:
                args.jsonl.parent.mkdir(parents=True, exist_ok=True)
                with args.jsonl.open("a") as f:
                    f.write(json.dumps(r) + "\n")
    print(f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, 1 thread, "
          f"budget {args.budget:.0f} CPU s per run\n")
    print("| method | batch | steps in budget | sequences seen | test bits/char |\n|---|---|---|---|---|")
    for r in rows:
        bpc = f"{r['test_bits_per_char']:.3f}" + (" (bound)" if r["bound"] else "")
        print(f"| {r['method']} | {r['batch']} | {r['steps']} | {r['sequences_seen']} | {bpc} |")


if __name__ == "__main__":
    main()
