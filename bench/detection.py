"""Detection benchmark: YOLO v1, FCOS and CenterNet on the generated scenes, each plain (head on the
last backbone map), with FPN, with trident branches, and plain + image-pyramid test (scales 1, 1.5, 2;
pooled naively, and with up-scaled images kept to boxes <= 12 px, SNIP-style); same backbone,
data, seed and number of steps. Question: do feature pyramids and scale-aware branches mainly help
small objects?

    OMP_NUM_THREADS=1 nice -n 10 python bench/detection.py --steps 700 --out bench/runs/detection
    OMP_NUM_THREADS=1 nice -n 10 python bench/detection.py --steps 700 --out bench/runs/detection \
        --methods centernet --necks fpn --set radius_rule=cornernet

Prints a markdown table (AP, AP50, AP75, AP_small/medium/large in %, training seconds) and writes
OUT/results.json. Runs go to OUT/<method>-<neck>; an existing finished run is reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from deepatlas.config import add_arguments
from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.registry import get
from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.config import TrainConfig
from deepatlas.train.run import RunConfig, build_method, start_run
from deepatlas.train.trainer import fit

METHODS = ("yolov1", "fcos", "centernet")
NECKS = {"plain": {}, "fpn": {"fpn": True}, "trident": {"trident": True}}
PYRAMID = [1.0, 1.5, 2.0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("bench/runs/detection"))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--necks", nargs="+", default=list(NECKS))
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="extra model-config fields, converted to the field's type, e.g. radius_rule=cornernet or fallback_grow=-1; runs get a suffix")
    args = ap.parse_args()
    torch.set_num_threads(1)

    data_cfg = DataConfig(name="scenes", size=4000, seed=0)
    data = load_dataset(data_cfg)
    train_cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=2e-3, warmup=100, lr_decay="cosine",
                            ema_decay=0.99, weight_decay=1e-4, ckpt_every=args.steps, log_every=50, threads=1, seed=0)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.methods:
        spec = get("method", name).obj
        for neck in args.necks:
            extra = dict(kv.split("=", 1) for kv in args.set)
            key = f"{name}-{neck}" + "".join(f"+{k}={v}" for k, v in extra.items())
            run_dir = args.out / key
            typed = model_overrides(spec.Config, extra)
            model_cfg = spec.Config(**{**spec.defaults.get("model", {}), **NECKS[neck], **typed})
            cfg = RunConfig(name, data_cfg, model_cfg, train_cfg)
            method = build_method(cfg, data)
            saved = Checkpointer(run_dir).load() if run_dir.exists() else None
            train_s = 0.0
            if saved is None or saved.step < args.steps:  # (a finished run is only re-evaluated)
                start_run(run_dir, cfg)
                t0 = time.perf_counter()
                fit(method, data, train_cfg, run_dir, progress=False)
                train_s = time.perf_counter() - t0
                saved = Checkpointer(run_dir).load()
            # evaluate the EMA weights, as `deepatlas eval` does
            method.load_state_dict(saved.ema or saved.weights)
            method.eval()
            t0 = time.perf_counter()
            r = method.evaluate(data, args.n_test)
            row = {**r, "train_s": round(train_s, 1), "eval_s": round(time.perf_counter() - t0, 1),
                   "params": sum(p.numel() for p in method.parameters())}
            results[key] = row if key not in results or train_s > 0 else {**results[key], **{k: v for k, v in row.items() if k != "train_s"}}
            print(key, json.dumps(results[key]), flush=True)
            if neck == "plain" and not extra:
                for tag, limit in (("pyramid", 0.0), ("pyramid-ranges", 12.0)):
                    t0 = time.perf_counter()
                    r = method.evaluate(data, args.n_test, opts=method.SampleConfig(scales=list(PYRAMID)), pyramid_max_size=limit)
                    results[f"{key}+{tag}"] = {**r, "train_s": results[key]["train_s"],
                                               "eval_s": round(time.perf_counter() - t0, 1), "params": row["params"]}
                    print(f"{key}+{tag}", json.dumps(results[f"{key}+{tag}"]), flush=True)
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1))
    print(table(results))


def model_overrides(cls: type, extra: dict[str, str]) -> dict:
    """FIELD=VALUE strings -> typed values, parsed as `deepatlas train --model-FIELD VALUE` parses them
    (types, choices; a bool is true/false)."""
    parser = argparse.ArgumentParser(prog="--set", add_help=False)
    add_arguments(parser, cls)
    defaults = cls()
    argv = []
    for k, v in extra.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(getattr(defaults, k, None), bool):
            argv.append(flag if v.lower() in ("1", "true", "yes") else "--no-" + k.replace("_", "-"))
        else:
            argv += [flag, v]
    return vars(parser.parse_args(argv))


def table(results: dict) -> str:
    lines = ["| method | neck / test | AP | AP50 | AP75 | AP_small | AP_medium | AP_large | train s | params |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        name, neck = key.split("-", 1)
        pct = lambda v: f"{100 * v:.1f}"
        lines.append(f"| {name} | {neck} | {pct(r['AP'])} | {pct(r['AP50'])} | {pct(r['AP75'])} | {pct(r['AP_small'])} "
                     f"| {pct(r['AP_medium'])} | {pct(r['AP_large'])} | {r['train_s']} | {r['params']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
