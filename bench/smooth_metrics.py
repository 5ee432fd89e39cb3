"""F1 on the imbalanced task: cross-entropy vs the smooth F1 (and smooth accuracy) surrogates.

Same MLP (2 x 64), data, budget (steps x batch) and seeds for every objective; the only change is the loss.
As a reference, cross-entropy with its decision threshold tuned for F1 on a separate validation draw
(what one would do after training with CE). Run:

    OMP_NUM_THREADS=1 python bench/smooth_metrics.py [--seeds 5] [--steps 1500] [--variant binary]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.data.imbalanced import make_binary, make_multiclass
from deepatlas.objectives.classifier import Classifier
from deepatlas.objectives.smooth_metrics import f1
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit


def tuned_threshold_f1(model, val, test) -> float:
    """Binary only: threshold on p(y=1|x) chosen for F1 on `val`, applied to `test`."""
    with torch.no_grad():
        pv = torch.softmax(model(val[0]), 1)[:, 1]
        pt = torch.softmax(model(test["x"]), 1)[:, 1]

    def f1_at(p, y, t):
        pred = p > t
        tp = (pred & (y == 1)).sum().item()
        return 2 * tp / max(1, pred.sum().item() + (y == 1).sum().item())

    best = max((f1_at(pv, val[1], t), t) for t in torch.linspace(0.02, 0.98, 49).tolist())[1]
    return f1_at(pt, test["y"], best)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--variant", default="binary", choices=("binary", "multiclass"))
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    losses = ("ce", "smooth-f1", "smooth-acc")
    res: dict[str, list] = {k: [] for k in (*losses, "ce+threshold")}
    acc: dict[str, list] = {k: [] for k in losses}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        data = load_dataset(DataConfig(name="imbalanced", variant=args.variant, seed=seed))
        g = torch.Generator().manual_seed(10_000 + seed)
        val = make_binary(20000, g) if args.variant == "binary" else make_multiclass(20000, g)
        avg = "binary" if args.variant == "binary" else "macro"
        for loss in losses:
            torch.manual_seed(seed)
            m = Classifier(Classifier.Config(loss=loss, temperature=args.temperature), data.info)
            cfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=3e-3, ema_decay=0.0, seed=seed,
                              ckpt_every=args.steps, log_every=args.steps)
            with tempfile.TemporaryDirectory() as d:
                fit(m, data, cfg, d, progress=False)
            m.eval()
            with torch.no_grad():
                z = m(data.test["x"])
            res[loss].append(f1(z, data.test["y"], avg).item())
            acc[loss].append((z.argmax(1) == data.test["y"]).float().mean().item())
            if loss == "ce" and args.variant == "binary":
                res["ce+threshold"].append(tuned_threshold_f1(m, val, data.test))
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in res.items() if v), flush=True)
    print(f"\n{args.variant}: {args.seeds} seeds, {args.steps} steps x batch {args.batch}, "
          f"temperature {args.temperature}, {time.perf_counter() - t0:.0f} s")
    print("| objective | test F1 (mean ± sd) | per seed | test accuracy |")
    print("|---|---|---|---|")
    for k, v in res.items():
        if not v:
            continue
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        a = f"{statistics.mean(acc[k]):.4f}" if k in acc else "-"
        print(f"| {k} | {statistics.mean(v):.3f} ± {sd:.3f} | {' '.join(f'{x:.3f}' for x in v)} | {a} |")
    if res["ce"]:
        print(f"\nratio smooth-f1 / ce F1: {statistics.mean(res['smooth-f1']) / statistics.mean(res['ce']):.2f}")


if __name__ == "__main__":
    main()
