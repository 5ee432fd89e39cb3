"""Representation learning benchmark: frozen-feature linear-probe and kNN test accuracy of the same
encoder trained by each method under the same wall-clock budget (1 CPU thread).

Rows: (a) the encoder at its random initialisation, (b) the margin contrastive loss (pairs mined from
labels, and from augmented views), (c) NT-Xent / SimCLR, (d) CPC, (e) the supervised encoder (ceiling).
Each trained method gets `--budget` seconds: its step count is the budget divided by its measured
seconds per step (timed on 5 warm-up steps); the steps and the real training time are reported.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python bench/representation.py --data digits --budget 45
    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python bench/representation.py --data fashion-mnist --budget 120
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.registry import get
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit

SETTINGS = {
    # dataset: (train subset, test examples, encoder width, augmentations shared by the view-based methods)
    "digits": dict(size=0, test=360, width=32, aug=dict(crop_scale=0.75, flip=0.0, rotate=10.0, shear=0.1, noise=0.1)),
    "fashion-mnist": dict(size=10000, test=5000, width=16, aug=dict(crop_scale=0.6, flip=0.5, rotate=10.0, shear=0.1, noise=0.1)),
}

ROWS = [  # (row name, method, model options, batch size)
    ("random frozen encoder", "supervised", {}, 0),
    ("margin contrastive (label pairs)", "contrastive", {"pairs": "labels"}, 128),
    ("margin contrastive (view pairs)", "contrastive", {"pairs": "views"}, 128),
    ("NT-Xent (SimCLR, tau=0.5)", "simclr", {"temperature": 0.5}, 128),
    ("CPC (patch rows, k=1..2)", "cpc", {}, 64),
    ("supervised (ceiling)", "supervised", {}, 128),
]


def build(method: str, opts: dict, setting: dict, info):
    cls = get("method", method).obj
    fields = set(cls.Config.__dataclass_fields__)
    kw = {"width": setting["width"], "dim": 128, "probe_train": 10**9, **opts}
    kw.update({k: v for k, v in setting["aug"].items() if k in fields})
    return cls(cls.Config(**kw), info)


def seconds_per_step(method, data, batch: int) -> float:
    opt = torch.optim.AdamW(method.parameters(), lr=0.0)  # lr 0: timing only, weights unchanged
    b = data.train.get(torch.arange(batch))
    t = None
    for i in range(6):
        if i == 1:
            t = time.perf_counter()
        opt.zero_grad()
        method.loss(b)["loss"].backward()
        opt.step()
    return (time.perf_counter() - t) / 5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=tuple(SETTINGS), default="digits")
    p.add_argument("--budget", type=float, default=60.0, help="training seconds per method")
    p.add_argument("--out", type=Path, default=Path("/tmp/deepatlas-bench-representation"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", nargs="*", default=None, help="subset of methods to run (method names)")
    args = p.parse_args()
    torch.set_num_threads(1)
    setting = SETTINGS[args.data]
    data = load_dataset(DataConfig(name=args.data, size=setting["size"]))
    results = []
    for name, method, opts, batch in ROWS:
        if args.rows and method not in args.rows:
            continue
        torch.manual_seed(args.seed)
        m = build(method, opts, setting, data.info)
        steps, train_s = 0, 0.0
        if batch:
            init = {k: v.clone() for k, v in m.state_dict().items()}
            sps = seconds_per_step(m, data, batch)
            m.load_state_dict(init)
            steps = max(1, int(args.budget / sps))
            cfg = TrainConfig(steps=steps, batch_size=batch, lr=1e-3, warmup=50, ema_decay=0.0, seed=args.seed,
                              ckpt_every=10**9, log_every=max(1, steps // 10), threads=1)
            run = args.out / args.data / method / name.split(" (")[-1].strip(")").replace(" ", "_").replace("=", "")
            shutil.rmtree(run, ignore_errors=True)  # always train from scratch
            t0 = time.perf_counter()
            fit(m, data, cfg, run, progress=False)
            train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = m.evaluate(data, setting["test"])
        eval_s = time.perf_counter() - t0
        row = {"row": name, "method": method, "batch": batch, "steps": steps, "train_s": round(train_s, 1),
               "eval_s": round(eval_s, 1), "linear_probe_acc": res["linear_probe_acc"], "knn_acc": res["knn_acc"],
               "probe_train": res["probe_train"], "test": res["test"]}
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.data}: train subset {len(data.train)}, probe fitted on {results[0]['probe_train']} train features, "
          f"scored on {results[0]['test']} test examples; encoder ConvEncoder(width={setting['width']}, dim=128); "
          f"budget {args.budget:.0f} s per method, 1 thread\n")
    print("| encoder trained by | batch | steps | train s | linear probe acc | kNN acc (k=10, cosine) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['batch'] or '-'} | {r['steps']} | {r['train_s']} | {r['linear_probe_acc']:.3f} | {r['knn_acc']:.3f} |")


if __name__ == "__main__":
    main()
