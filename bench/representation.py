"""Representation learning benchmark: frozen-feature linear-probe and kNN test accuracy of the same
encoder trained by each method under the same CPU-time budget (1 thread), optionally as a learning curve.

Rows: (a) the encoder at its random initialisation, (b) the margin contrastive loss (pairs mined from
labels, and from augmented views), (c) NT-Xent / SimCLR, (d) CPC, (e) the supervised encoder (ceiling).
Budgets are CPU seconds of this process (time.process_time), not wall clock: the machine is shared and
wall time depends on the others' load. Training runs in chunks through the shared trainer (each chunk
resumes the last one's checkpoint, which repeats an uninterrupted run exactly) until the process has
spent the budget; the learning rate is constant after warm-up, so a point of a curve is the run that
stops there. Evaluation time is not counted.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python bench/representation.py --data digits --budget 45
    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python bench/representation.py --data fashion-mnist --budget 120
    # learning curve: linear probe / kNN at 0, 0.5, 1, 2, 4, 8 CPU-minutes of training
    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 python bench/representation.py --data fashion-mnist \
        --rows simclr --curve 0.5 1 2 4 8 --jsonl bench/results/representation_curve.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.registry import get
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit

SETTINGS = {
    # dataset: (train subset, test examples, encoder width, view options overriding the SimCLR defaults)
    "digits": dict(size=0, test=360, width=32, aug=dict(flip=0.0)),  # digits are not mirror-symmetric
    "fashion-mnist": dict(size=10000, test=5000, width=16, aug=dict()),
}

ROWS = {  # key: (row name, method, model options, batch size)
    "random": ("random frozen encoder", "supervised", {}, 0),
    "contrastive-labels": ("margin contrastive (label pairs)", "contrastive", {"pairs": "labels"}, 128),
    "contrastive-views": ("margin contrastive (view pairs)", "contrastive", {"pairs": "views"}, 128),
    "simclr": ("NT-Xent (SimCLR, tau=0.5)", "simclr", {"temperature": 0.5}, 128),
    "cpc": ("CPC (patch rows, k=1..2)", "cpc", {}, 64),
    "supervised": ("supervised (ceiling)", "supervised", {}, 128),
}


def build(method: str, opts: dict, setting: dict, info):
    cls = get("method", method).obj
    fields = set(cls.Config.__dataclass_fields__)
    kw = {"width": setting["width"], "dim": 128, "probe_train": 10**9, **opts}
    kw.update({k: v for k, v in setting["aug"].items() if k in fields})
    return cls(cls.Config(**kw), info)


def train_until(m, data, batch: int, run: Path, seed: int, state: dict, cpu_s: float) -> None:
    """Train m (resuming run's checkpoint) until state['cpu_s'] >= cpu_s CPU seconds; updates state's
    cpu_s, steps and last metrics. Chunks are sized from the last chunk's CPU seconds per step."""
    while state["cpu_s"] < cpu_s:
        chunk = 10 if not state["s_per_step"] else max(5, math.ceil((cpu_s - state["cpu_s"]) / state["s_per_step"]))
        steps = state["steps"] + chunk
        cfg = TrainConfig(steps=steps, batch_size=batch, lr=1e-3, warmup=50, ema_decay=0.0, seed=seed,
                          ckpt_every=10**9, log_every=min(50, chunk), threads=1)
        t0 = time.process_time()
        state["last"] = fit(m, data, cfg, run, progress=False)
        spent = time.process_time() - t0
        state.update(cpu_s=state["cpu_s"] + spent, steps=steps, s_per_step=spent / chunk)


def run_row(key: str, data, setting: dict, marks_s: list[float], args, emit) -> None:
    name, method, opts, batch = ROWS[key]
    torch.manual_seed(args.seed)
    m = build(method, opts, setting, data.info)
    run = args.out / args.data / key
    shutil.rmtree(run, ignore_errors=True)  # always train from scratch
    state = {"cpu_s": 0.0, "steps": 0, "s_per_step": 0.0, "last": {}}
    for mark in ([0.0] if not batch else marks_s):
        if batch:
            train_until(m, data, batch, run, args.seed, state, mark)
        t0 = time.process_time()
        res = m.evaluate(data, setting["test"])
        emit({"row": name, "key": key, "method": method, "batch": batch, "target_cpu_min": mark / 60,
              "steps": state["steps"], "train_cpu_min": round(state["cpu_s"] / 60, 3),
              "eval_cpu_s": round(time.process_time() - t0, 1), "loss": state["last"].get("loss"),
              "linear_probe_acc": res["linear_probe_acc"], "knn_acc": res["knn_acc"],
              "probe_train": res["probe_train"], "test": res["test"]})


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, metric in zip(axes, ("linear_probe_acc", "knn_acc")):
        for key in dict.fromkeys(r["key"] for r in results):
            pts = [r for r in results if r["key"] == key]
            if key == "random":
                ax.axhline(pts[0][metric], ls="--", color="grey", label=pts[0]["row"])
            elif len(pts) >= 3:  # a curve (rows measured at one budget only are left to the tables)
                ax.plot([r["train_cpu_min"] for r in pts], [r[metric] for r in pts], "o-", label=pts[0]["row"])
        ax.set_xscale("symlog", linthresh=0.5)
        ax.set_xlabel("training CPU-minutes (1 thread)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def curve_table(points: list[dict]) -> str:
    """Markdown: one row per trained row, one column per CPU-minute mark, cells 'probe / kNN'."""
    marks = sorted({r["target_cpu_min"] for r in points})
    keys = sorted(dict.fromkeys(r["key"] for r in points), key=list(ROWS).index)
    lines = ["| encoder trained by | " + " | ".join(f"{m:g} CPU-min" for m in marks) + " |",
             "|---|" + "---|" * len(marks)]
    for key in keys:
        by_mark = {r["target_cpu_min"]: r for r in points if r["key"] == key}
        cells = [f"{by_mark[m]['linear_probe_acc']:.3f} / {by_mark[m]['knn_acc']:.3f}" if m in by_mark else ""
                 for m in marks]
        lines.append(f"| {by_mark[min(by_mark)]['row']} | " + " | ".join(cells) + " |")
    steps = {key: [f"{r['steps']} ({r['train_cpu_min']:.2f})" for r in points if r["key"] == key and r["steps"]]
             for key in keys}
    lines += ["", "steps (measured training CPU-minutes) at each mark:"]
    lines += [f"- {key}: " + ", ".join(v) for key, v in steps.items() if v]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=tuple(SETTINGS), default="digits")
    p.add_argument("--budget", type=float, default=60.0, help="training CPU seconds per method (without --curve)")
    p.add_argument("--curve", type=float, nargs="+", default=None,
                   help="CPU-minutes at which to evaluate each trained row (0 is always evaluated)")
    p.add_argument("--out", type=Path, default=Path("/tmp/deepatlas-bench-representation"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", nargs="+", choices=tuple(ROWS), default=None, help="subset of rows to run")
    p.add_argument("--jsonl", type=Path, default=None, help="append every measured point to this file")
    p.add_argument("--plot", type=Path, default=None, help="PNG of the curves, from --jsonl's points of this --data")
    p.add_argument("--report", action="store_true",
                   help="run nothing: print the curve table of --jsonl's points of this --data (and --plot them)")
    args = p.parse_args()
    if args.report:
        points = [r for r in map(json.loads, args.jsonl.read_text().splitlines()) if r["data"] == args.data]
        print(curve_table(points))
        if args.plot:
            plot(points, args.plot, f"{args.data}: frozen features vs training CPU time (shared 2-core CPU)")
        return
    torch.set_num_threads(1)
    setting = SETTINGS[args.data]
    marks = sorted({60 * m for m in args.curve} | {0.0}) if args.curve else [args.budget]
    data = load_dataset(DataConfig(name=args.data, size=setting["size"]))
    results = []

    def emit(row: dict) -> None:
        row = {"data": args.data, "seed": args.seed, **row}
        results.append(row)
        print(json.dumps(row), flush=True)
        if args.jsonl:
            args.jsonl.parent.mkdir(parents=True, exist_ok=True)
            with args.jsonl.open("a") as f:
                f.write(json.dumps(row) + "\n")

    for key in args.rows or ROWS:
        run_row(key, data, setting, marks, args, emit)
    print(f"\n{args.data}: train subset {len(data.train)}, probe fitted on {results[0]['probe_train']} train features, "
          f"scored on {results[0]['test']} test examples; encoder ConvEncoder(width={setting['width']}, dim=128); 1 thread\n")
    print("| encoder trained by | batch | steps | train CPU-min | linear probe acc | kNN acc (k=10, cosine) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['batch'] or '-'} | {r['steps']} | {r['train_cpu_min']:.2f} | "
              f"{r['linear_probe_acc']:.3f} | {r['knn_acc']:.3f} |")
    if args.plot:
        points = results
        if args.jsonl and args.jsonl.exists():
            points = [r for r in map(json.loads, args.jsonl.read_text().splitlines()) if r["data"] == args.data]
        plot(points, args.plot, f"{args.data}: frozen features vs training CPU time (shared 2-core CPU)")


if __name__ == "__main__":
    main()
