"""PointNet on the generated clouds: shape accuracy (shapes3d) and part mIoU (parts3d).

One configuration per call, so that each run stays a few CPU-minutes; the table row is printed at the end.
Budget: --steps x --batch clouds of --points points, width 0.25 of the paper's channels, 1 thread.

    OMP_NUM_THREADS=1 python bench/pointnet.py --task cls [--no-tnets] [--steps 1500] [--points 256]
    OMP_NUM_THREADS=1 python bench/pointnet.py --task seg [--steps 1500] [--points 256]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.pointcloud.pointnet import PointNet, PointNetSeg
from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", choices=("cls", "seg"), required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--rotation", default="so3", choices=("so3", "z", "none"))
    ap.add_argument("--no-tnets", action="store_true", help="ablation: neither input nor feature T-Net")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    name, cls = ("shapes3d", PointNet) if args.task == "cls" else ("parts3d", PointNetSeg)
    data = load_dataset(DataConfig(name=name, points=args.points, variant=args.rotation, seed=args.seed))
    torch.manual_seed(args.seed)
    cfg = cls.Config(width=args.width, input_transform=not args.no_tnets, feature_transform=not args.no_tnets)
    method = cls(cfg, data.info)
    train = TrainConfig(steps=args.steps, batch_size=args.batch, lr=1e-3, ema_decay=0.99, seed=args.seed,
                        ckpt_every=args.steps, log_every=max(1, args.steps // 10), lr_decay="cosine")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        fit(method, data, train, d, progress=False)
        saved = Checkpointer(d).load()  # evaluate the EMA weights, as `deepatlas eval` does
        method.load_state_dict(saved.ema or saved.weights)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result = method.evaluate(data, len(data.test))
    result.update(task=args.task, tnets=not args.no_tnets, steps=args.steps, batch=args.batch, points=args.points,
                  width=args.width, rotation=args.rotation, train_n=len(data.train), test_n=len(data.test),
                  train_cpu_s=round(cpu, 1), train_wall_s=round(wall, 1),
                  params=sum(p.numel() for p in method.parameters()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
