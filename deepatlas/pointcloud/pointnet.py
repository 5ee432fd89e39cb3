"""PointNet methods: `pointnet` (one label per cloud) and `pointnet-seg` (one part label per point).

Both minimise cross-entropy plus the feature-alignment penalty of the T-Net,

    L = CE + w_reg * mean_b || I - A_b A_b^T ||_F^2 ,

with A_b the 64x64 (times `width`) feature transform of cloud b (w_reg = 0.001 in the paper). The
segmentation head sees each point's local features next to the global feature and the object's class
(one-hot, as in the paper's ShapeNet-part model); at evaluation its prediction is restricted to the parts
of that class, as the ShapeNet-part protocol does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deepatlas.config import option
from deepatlas.errors import UserError
from deepatlas.method import Method
from deepatlas.nn.pointnet import PointNetClassifier, PointNetSegmenter, orthogonality_penalty
from deepatlas.pointcloud.part_miou import part_miou
from deepatlas.registry import register_method


def _check_points(info, method: str) -> None:
    if info.kind != "points":
        raise UserError(f"{method} needs a point-cloud dataset (shapes3d, parts3d, pointcloud-files), "
                        f"got a dataset of kind '{info.kind}'")


@dataclass
class PointNetConfig:
    width: float = option(0.25, "channel widths as a fraction of the paper's (1.0: 64-128-1024 and 512-256 heads)",
                          low=0.01, high=4.0)
    input_transform: bool = option(True, "learn the 3x3 input alignment (input T-Net)")
    feature_transform: bool = option(True, "learn the 64-D feature alignment (feature T-Net) and regularise it")
    reg_weight: float = option(0.001, "weight of ||I - A A^T||^2 on the feature transform", low=0.0)
    dropout: float = option(0.3, "dropout in the classification head (pointnet only)", low=0.0, high=0.95)


def _reg(out: dict) -> torch.Tensor:
    a = out["a_feat"]
    return orthogonality_penalty(a).mean() if a is not None else out["logits"].new_zeros(())


def _batches(split, n: int, size: int = 64):
    n = min(n, len(split))
    for i in range(0, n, size):
        yield split.get(torch.arange(i, min(i + size, n)))


@register_method("pointnet", "pointcloud", "PointNet classification (input + feature T-Nets, shared MLP, max pool)")
class PointNet(Method):
    Config = PointNetConfig
    datasets = ("shapes3d", "pointcloud-files")
    defaults = {"data": {"name": "shapes3d"},
                "train": {"steps": 1500, "batch_size": 32, "lr": 1e-3, "ema_decay": 0.99, "ckpt_every": 500}}

    def __init__(self, cfg: PointNetConfig, info):
        super().__init__(cfg, info)
        _check_points(info, "pointnet")
        self.net = PointNetClassifier(info.num_classes, cfg.width, cfg.feature_transform, cfg.dropout,
                                      cfg.input_transform)

    def forward(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(points)

    def loss(self, batch):
        out = self.net(batch["x"])
        ce = F.cross_entropy(out["logits"], batch["y"])
        reg = _reg(out)
        acc = (out["logits"].argmax(1) == batch["y"]).float().mean()
        return {"loss": ce + self.cfg.reg_weight * reg, "ce": ce, "reg": reg, "acc": acc}

    @torch.no_grad()
    def predict(self, points: torch.Tensor) -> torch.Tensor:
        self.eval()
        return self.net(points)["logits"].argmax(1)

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator=None, opts=None, folder=None) -> dict[str, float]:
        pred, true = [], []
        for b in _batches(dataset.test, n):
            pred.append(self.predict(b["x"]))
            true.append(b["y"])
        pred, true = torch.cat(pred), torch.cat(true)
        per_class = [(pred[true == c] == c).float().mean().item() for c in true.unique().tolist()]
        return {"accuracy": (pred == true).float().mean().item(),
                "mean_class_accuracy": sum(per_class) / len(per_class), "n": len(true)}


@register_method("pointnet-seg", "pointcloud", "PointNet part segmentation (per-point labels, part mIoU)")
class PointNetSeg(Method):
    Config = PointNetConfig
    datasets = ("parts3d", "pointcloud-files")
    defaults = {"data": {"name": "parts3d"},
                "train": {"steps": 1500, "batch_size": 32, "lr": 1e-3, "ema_decay": 0.99, "ckpt_every": 500}}

    def __init__(self, cfg: PointNetConfig, info):
        super().__init__(cfg, info)
        _check_points(info, "pointnet-seg")
        if "num_parts" not in info.extra:
            raise UserError("pointnet-seg needs per-point part labels: use --data parts3d, or PLY files with a "
                            "vertex 'label' property")
        self.num_parts = info.extra["num_parts"]
        self.net = PointNetSegmenter(self.num_parts, info.num_classes, cfg.width, cfg.feature_transform,
                                     cfg.input_transform)
        allowed = torch.zeros(info.num_classes, self.num_parts, dtype=torch.bool)
        for c, parts in enumerate(info.extra["class_parts"]):
            allowed[c, parts] = True
        self.register_buffer("allowed", allowed, persistent=False)  # (classes, parts)

    def forward(self, points: torch.Tensor, shape_class: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(points, shape_class)

    def loss(self, batch):
        out = self.net(batch["x"], batch["y"])
        ce = F.cross_entropy(out["logits"].reshape(-1, self.num_parts), batch["parts"].reshape(-1))
        reg = _reg(out)
        acc = (out["logits"].argmax(-1) == batch["parts"]).float().mean()
        return {"loss": ce + self.cfg.reg_weight * reg, "ce": ce, "reg": reg, "point_acc": acc}

    @torch.no_grad()
    def predict(self, points: torch.Tensor, shape_class: torch.Tensor) -> torch.Tensor:
        """(B, N) part ids, chosen among the parts of each cloud's class."""
        self.eval()
        logits = self.net(points, shape_class)["logits"]
        return logits.masked_fill(~self.allowed[shape_class][:, None, :], float("-inf")).argmax(-1)

    @torch.no_grad()
    def evaluate(self, dataset, n: int, generator=None, opts=None, folder=None) -> dict[str, float]:
        pred, true, ys = [], [], []
        for b in _batches(dataset.test, n):
            pred.append(self.predict(b["x"], b["y"]))
            true.append(b["parts"])
            ys.append(b["y"])
        pred, true, ys = torch.cat(pred), torch.cat(true), torch.cat(ys)
        return {**part_miou(pred, true, ys, self.info.extra["class_parts"]),
                "point_accuracy": (pred == true).float().mean().item(), "n": len(ys)}
