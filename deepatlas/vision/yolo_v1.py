"""YOLO v1 (Redmon et al., 2016): one S x S grid, B boxes per cell, one class distribution per cell.

Each cell predicts B boxes (x, y, √w, √h, confidence) and one class distribution; the cell holding an
object's centre answers for it, and the sum-squared loss weighs box coordinates by λ_coord = 5 and
the confidence of boxes without an object by λ_noobj = 0.5 (the targets, the decoding and the loss
with its equation are in `vision/yolo_grid.py`). Test time: class score = C · p(c), then per-class NMS.

Here S is the map's size: 6 (stride 16) on the 96-pixel canvas without FPN, 12 with FPN (the head
reads P3, stride 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.registry import register_method
from deepatlas.vision.detector import Detector, DetectorConfig, Level
from deepatlas.vision.yolo_grid import decode_boxes, sum_squared_loss


@register_method("yolov1", "vision", "YOLO v1: S x S grid, B boxes + confidence per cell, sum-squared loss")
class YOLOv1(Detector):
    @dataclass
    class Config(DetectorConfig):
        boxes_per_cell: int = option(2, "B: boxes predicted per cell", low=1)
        lambda_coord: float = option(5.0, "weight of the box-coordinate terms", low=0.0)
        lambda_noobj: float = option(0.5, "weight of the confidence of boxes without an object", low=0.0)

    fpn_levels = (1,)  # P3: a 12 x 12 grid

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        B, C = cfg.boxes_per_cell, self.num_classes
        self.tower = nn.Sequential(nn.Conv2d(self.channels, self.channels, 3, padding=1), nn.GroupNorm(8, self.channels), nn.ReLU())
        self.out = nn.Conv2d(self.channels, B * 5 + C, 1)

    def head(self, feat: torch.Tensor, level: Level) -> dict:
        y = self.out(self.tower(feat))
        n, _, h, w = y.shape
        B = self.cfg.boxes_per_cell
        box = torch.sigmoid(y[:, : B * 5].view(n, B, 5, h, w))
        return {"box": box[:, :, :4], "conf": box[:, :, 4], "prob": F.softmax(y[:, B * 5:], 1)}

    def level_loss(self, out: dict, level: Level, boxes: torch.Tensor, labels: torch.Tensor) -> dict:
        return sum_squared_loss(out["box"], out["conf"], out["prob"], boxes, labels, level.stride,
                                self.cfg.lambda_coord, self.cfg.lambda_noobj)

    def decode(self, out: dict, level: Level) -> list[dict]:
        n, B, _, h, w = out["box"].shape
        xyxy = decode_boxes(out["box"], level.stride, (h, w)).reshape(n, -1, 4)  # (N, B*h*w, 4)
        score = out["conf"][:, :, None] * out["prob"][:, None]  # (N, B, C, h, w)
        best, cls = score.max(2)  # (N, B, h, w)
        return [{"boxes": xyxy[i], "scores": best[i].reshape(-1), "labels": cls[i].reshape(-1)} for i in range(n)]
