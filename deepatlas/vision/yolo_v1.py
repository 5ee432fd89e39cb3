"""YOLO v1 (Redmon et al., 2016): one S x S grid, B boxes per cell, one class distribution per cell.

The cell (i, j) holding an object's centre is responsible for it; of its B boxes, the one with the
highest IoU with the object is the "responsible predictor". Each box b is (x, y, √w, √h, C): centre
offset in the cell, square roots of width and height as fractions of the image, and confidence.
With 1_obj marking responsible predictors, 1_noobj all other boxes and 1_cell the cells holding an
object, the loss summed over the grid (and averaged over images) is

  λ_coord Σ 1_obj [(x - x̂)² + (y - ŷ)²] + λ_coord Σ 1_obj [(√w - √ŵ)² + (√h - √ĥ)²]
  + Σ 1_obj (C - IoU(box, object))² + λ_noobj Σ 1_noobj C² + Σ 1_cell Σ_c (p(c) - p̂(c))²

with λ_coord = 5, λ_noobj = 0.5. The square roots make an error of a few pixels cost more on a
small box than on a large one. Test time: class score = C · p(c), then per-class NMS.

Here S is the map's size: 6 (stride 16) on the 96-pixel canvas without FPN, 12 with FPN (the head
reads P3, stride 8). If two object centres fall in one cell, the first object keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.registry import register_method
from deepatlas.vision.boxes import box_iou
from deepatlas.vision.detector import Detector, DetectorConfig, Level


def decode_boxes(raw: torch.Tensor, stride: int, grid_hw: tuple[int, int]) -> torch.Tensor:
    """raw (N, B, 4, h, w) sigmoid outputs (x, y, √w, √h) -> xyxy pixels (N, B, h, w, 4)."""
    h, w = grid_hw
    ys, xs = torch.meshgrid(torch.arange(h, device=raw.device), torch.arange(w, device=raw.device), indexing="ij")
    cx = (xs + raw[:, :, 0]) * stride
    cy = (ys + raw[:, :, 1]) * stride
    bw, bh = raw[:, :, 2] ** 2 * (w * stride), raw[:, :, 3] ** 2 * (h * stride)
    return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)


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
        n, B, _, h, w = out["box"].shape
        s = level.stride
        img_w, img_h = w * s, h * s
        pred_xyxy = decode_boxes(out["box"], s, (h, w))  # (N, B, h, w, 4)
        # Targets per cell: the first object whose centre falls in it. Built one object at a time in Python,
        # so on the CPU (one copy of the boxes there and of the targets back), then moved to the outputs' device.
        boxes, labels = boxes.cpu(), labels.cpu()
        t_box = torch.zeros(n, h, w, 4)  # x, y, √w, √h targets
        t_xyxy = torch.zeros(n, h, w, 4)
        t_cls = torch.zeros(n, h, w, dtype=torch.long)
        has = torch.zeros(n, h, w, dtype=torch.bool)
        for i, k in reversed(torch.nonzero(labels >= 0).tolist()):  # reversed: the first object wins
            x0, y0, x1, y1 = boxes[i, k].tolist()
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            gj, gi = min(int(cx // s), w - 1), min(int(cy // s), h - 1)
            t_box[i, gi, gj] = torch.tensor([cx / s - gj, cy / s - gi, ((x1 - x0) / img_w) ** 0.5, ((y1 - y0) / img_h) ** 0.5])
            t_xyxy[i, gi, gj] = boxes[i, k]
            t_cls[i, gi, gj] = labels[i, k]
            has[i, gi, gj] = True
        t_box, t_xyxy, t_cls, has = (t.to(pred_xyxy.device) for t in (t_box, t_xyxy, t_cls, has))
        # Responsible predictor: the box with the highest IoU with the cell's object.
        iou = box_iou(pred_xyxy.detach(), t_xyxy[:, None].expand_as(pred_xyxy), pairwise=False, eps=1e-9)  # (N, B, h, w)
        resp = F.one_hot(iou.argmax(1), B).permute(0, 3, 1, 2).bool() & has[:, None]
        noobj = ~resp
        pred = out["box"].permute(0, 1, 3, 4, 2)  # (N, B, h, w, 4)
        tgt = t_box[:, None].expand_as(pred)
        lam_c, lam_n = self.cfg.lambda_coord, self.cfg.lambda_noobj
        coord = lam_c * ((pred - tgt) ** 2).sum(-1)[resp].sum()
        obj = ((out["conf"] - iou) ** 2)[resp].sum()
        no = lam_n * (out["conf"] ** 2)[noobj].sum()
        onehot = F.one_hot(t_cls, self.num_classes).permute(0, 3, 1, 2).float()
        cls = ((out["prob"] - onehot) ** 2).sum(1)[has].sum()
        total = (coord + obj + no + cls) / n
        return {"loss": total, "coord": coord.detach() / n, "obj": obj.detach() / n, "noobj": no.detach() / n,
                "cls": cls.detach() / n}

    def decode(self, out: dict, level: Level) -> list[dict]:
        n, B, _, h, w = out["box"].shape
        xyxy = decode_boxes(out["box"], level.stride, (h, w)).reshape(n, -1, 4)  # (N, B*h*w, 4)
        score = out["conf"][:, :, None] * out["prob"][:, None]  # (N, B, C, h, w)
        best, cls = score.max(2)  # (N, B, h, w)
        return [{"boxes": xyxy[i], "scores": best[i].reshape(-1), "labels": cls[i].reshape(-1)} for i in range(n)]
