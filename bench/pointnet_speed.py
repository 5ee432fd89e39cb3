"""PointNet's training step in two layouts: points-last (what deepatlas runs: the shared MLPs as sgemm
products on (B, N, C), max pool by `max(dim)`) against channels-first (`Conv1d` on (B, C, N), max pool by
`amax`: the layout the code had before, and the paper's), on the same weights and batches.

    OMP_NUM_THREADS=2 python bench/pointnet_speed.py --json bench/results/pointnet_speed.json

The channels-first forward is written out below from the same modules (it is what the test
tests/test_pointcloud.py::test_points_last_shared_mlp_is_the_conv1d_mlp compares against). Before timing, both
layouts take one step in float64 from the same weights and their losses are compared. Variants run in
interleaved rounds in one process; a figure is the median step time over rounds.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from deepatlas.data.base import DataConfig, load_dataset  # noqa: E402
from deepatlas.nn import pointnet as P  # noqa: E402
from deepatlas.pointcloud.pointnet import PointNet, PointNetSeg  # noqa: E402


def _mlp_cf(mlp: P.SharedMLP, x: torch.Tensor) -> torch.Tensor:  # (B, C, N), the modules as torch runs them
    return nn.Sequential.forward(mlp, x)


def _tnet_cf(self: P.TNet, x: torch.Tensor) -> torch.Tensor:  # x (B, k, N)
    g = _mlp_cf(self.point, x).amax(dim=2)
    return torch.eye(self.k, dtype=x.dtype) + self.out(self.head(g)).view(-1, self.k, self.k)


def _encoder_cf(self: P.PointNetEncoder, points: torch.Tensor) -> dict:
    x, a_in, a_feat = points.transpose(1, 2), None, None
    if self.input_tnet is not None:
        a_in = _tnet_cf(self.input_tnet, x)
        x = torch.bmm(a_in.transpose(1, 2), x)
    x = _mlp_cf(self.mlp1, x)
    if self.feature_tnet is not None:
        a_feat = _tnet_cf(self.feature_tnet, x)
        x = torch.bmm(a_feat.transpose(1, 2), x)
    f128 = _mlp_cf(self.mlp2a, x)
    return {"global": _mlp_cf(self.mlp2b, f128).amax(dim=2), "f64": x, "f128": f128, "a_in": a_in, "a_feat": a_feat}


def _segmenter_cf(self: P.PointNetSegmenter, points: torch.Tensor, shape_class: torch.Tensor) -> dict:
    enc = _encoder_cf(self.encoder, points)
    onehot = nn.functional.one_hot(shape_class, self.num_classes).to(points.dtype)
    glob = torch.cat([enc["global"], onehot], 1)[:, :, None].expand(-1, -1, points.shape[1])
    x = torch.cat([enc["f64"], enc["f128"], glob], 1)
    logits = self.head[1](_mlp_cf(self.head[0], x)).transpose(1, 2)
    return {"logits": logits, "a_in": enc["a_in"], "a_feat": enc["a_feat"]}


@contextmanager
def layout(name: str):
    if name == "points-last":
        yield
        return
    with mock.patch.object(P.PointNetEncoder, "forward", _encoder_cf), \
            mock.patch.object(P.PointNetSegmenter, "forward", _segmenter_cf):
        yield


LAYOUTS = ("points-last", "channels-first")


def run(task: str, points: int, rounds: int, reps: int) -> dict:
    cls = PointNet if task == "cls" else PointNetSeg
    data = load_dataset(DataConfig(name="shapes3d" if task == "cls" else "parts3d", points=points))
    torch.manual_seed(0)
    base = cls(cls.Config(), data.info)
    batch = data.train.get(torch.arange(32))
    res = {"task": task, "points": points, "threads": torch.get_num_threads(), "batch": 32, "loss_f64": {}}
    for name in LAYOUTS:  # the same function: one float64 step from the same weights
        m = copy.deepcopy(base).double()
        b64 = {k: (v.double() if v.is_floating_point() else v) for k, v in batch.items()}
        with layout(name):
            torch.manual_seed(1)  # the same dropout draws
            res["loss_f64"][name] = float(m.loss(b64)["loss"])
    models = {name: copy.deepcopy(base) for name in LAYOUTS}
    opts = {name: torch.optim.AdamW(m.parameters(), 1e-3, fused=True) for name, m in models.items()}

    def step(name):
        with layout(name):
            out = models[name].loss(batch)
            opts[name].zero_grad()
            out["loss"].backward()
            opts[name].step()

    for name in LAYOUTS:
        step(name)  # warm-up
    times = {name: [] for name in LAYOUTS}
    for _ in range(rounds):
        for name in LAYOUTS:
            t = time.perf_counter()
            for _ in range(reps):
                step(name)
            times[name].append((time.perf_counter() - t) / reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    res["ms_per_step"] = {k: 1e3 * v for k, v in med.items()}
    res["speed_up"] = med["channels-first"] / med["points-last"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=["cls:1024", "seg:1024", "cls:256", "seg:256"],
                    help="TASK:POINTS per cloud (1024: the datasets' default; 256: bench/pointnet.py's)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out = {"meta": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, "runs": []}
    for c in args.configs:
        task, points = c.split(":")
        r = run(task, int(points), args.rounds, args.reps)
        out["runs"].append(r)
        print(json.dumps(r), flush=True)
    print("\n| task | points | threads | points-last ms/step | channels-first ms/step | speed-up | float64 loss, both |"
          "\n|---|---|---|---|---|---|---|")
    for r in out["runs"]:
        ms, lo = r["ms_per_step"], r["loss_f64"]
        print(f"| {r['task']} | {r['points']} | {r['threads']} | {ms['points-last']:.0f} | {ms['channels-first']:.0f} | "
              f"{r['speed_up']:.2f}x | {lo['points-last']:.12f} / {lo['channels-first']:.12f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
