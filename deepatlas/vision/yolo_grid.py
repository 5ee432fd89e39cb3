"""YOLO v1's grid (Redmon et al., 2016): which cell answers for which object, how its boxes are
decoded, and the sum-squared loss.

The cell (i, j) holding an object's centre is responsible for it (if two centres fall in one cell,
the first object keeps it); of its B boxes, the one with the highest IoU with the object is the
"responsible predictor". Each box b is (x, y, √w, √h, C): centre offset in the cell, square roots of
width and height as fractions of the image, and confidence. With 1_obj marking responsible
predictors, 1_noobj all other boxes and 1_cell the cells holding an object, the loss summed over the
grid (and averaged over images) is

  λ_coord Σ 1_obj [(x - x̂)² + (y - ŷ)²] + λ_coord Σ 1_obj [(√w - √ŵ)² + (√h - √ĥ)²]
  + Σ 1_obj (C - IoU(box, object))² + λ_noobj Σ 1_noobj C² + Σ 1_cell Σ_c (p(c) - p̂(c))²

with λ_coord = 5, λ_noobj = 0.5. The square roots make an error of a few pixels cost more on a
small box than on a large one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepatlas.vision.boxes import box_iou


def decode_boxes(raw: torch.Tensor, stride: int, grid_hw: tuple[int, int]) -> torch.Tensor:
    """raw (N, B, 4, h, w) sigmoid outputs (x, y, √w, √h) -> xyxy pixels (N, B, h, w, 4)."""
    h, w = grid_hw
    ys, xs = torch.meshgrid(torch.arange(h, device=raw.device), torch.arange(w, device=raw.device), indexing="ij")
    cx = (xs + raw[:, :, 0]) * stride
    cy = (ys + raw[:, :, 1]) * stride
    bw, bh = raw[:, :, 2] ** 2 * (w * stride), raw[:, :, 3] ** 2 * (h * stride)
    return torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1)


def cell_targets(boxes: torch.Tensor, labels: torch.Tensor, stride: int, grid_hw: tuple[int, int]):
    """boxes (N, M, 4) pixels, labels (N, M) (-1: none) -> per cell (N, h, w): the (x, y, √w, √h) target (.., 4),
    the object's box (.., 4), its class, and whether the cell holds an object. The first object whose centre
    falls in a cell keeps it. Built one object at a time in Python, so on the CPU."""
    h, w = grid_hw
    n = len(boxes)
    img_w, img_h = w * stride, h * stride
    boxes, labels = boxes.cpu(), labels.cpu()
    t_box = torch.zeros(n, h, w, 4)
    t_xyxy = torch.zeros(n, h, w, 4)
    t_cls = torch.zeros(n, h, w, dtype=torch.long)
    has = torch.zeros(n, h, w, dtype=torch.bool)
    for i, k in reversed(torch.nonzero(labels >= 0).tolist()):  # reversed: the first object wins
        x0, y0, x1, y1 = boxes[i, k].tolist()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        gj, gi = min(int(cx // stride), w - 1), min(int(cy // stride), h - 1)
        t_box[i, gi, gj] = torch.tensor([cx / stride - gj, cy / stride - gi,
                                         ((x1 - x0) / img_w) ** 0.5, ((y1 - y0) / img_h) ** 0.5])
        t_xyxy[i, gi, gj] = boxes[i, k]
        t_cls[i, gi, gj] = labels[i, k]
        has[i, gi, gj] = True
    return t_box, t_xyxy, t_cls, has


def sum_squared_loss(box: torch.Tensor, conf: torch.Tensor, prob: torch.Tensor, boxes: torch.Tensor,
                     labels: torch.Tensor, stride: int, lambda_coord: float = 5.0, lambda_noobj: float = 0.5) -> dict:
    """The loss above, averaged over images. box (N, B, 4, h, w) and conf (N, B, h, w) after the sigmoid,
    prob (N, C, h, w) after the softmax; boxes (N, M, 4) pixels, labels (N, M). -> its parts and their sum."""
    n, B, _, h, w = box.shape
    pred_xyxy = decode_boxes(box, stride, (h, w))  # (N, B, h, w, 4)
    t_box, t_xyxy, t_cls, has = (t.to(box.device) for t in cell_targets(boxes, labels, stride, (h, w)))
    # Responsible predictor: the box with the highest IoU with the cell's object.
    iou = box_iou(pred_xyxy.detach(), t_xyxy[:, None].expand_as(pred_xyxy), pairwise=False, eps=1e-9)  # (N, B, h, w)
    resp = F.one_hot(iou.argmax(1), B).permute(0, 3, 1, 2).bool() & has[:, None]
    pred = box.permute(0, 1, 3, 4, 2)  # (N, B, h, w, 4)
    coord = lambda_coord * ((pred - t_box[:, None].expand_as(pred)) ** 2).sum(-1)[resp].sum()
    obj = ((conf - iou) ** 2)[resp].sum()
    no = lambda_noobj * (conf ** 2)[~resp].sum()
    onehot = F.one_hot(t_cls, prob.shape[1]).permute(0, 3, 1, 2).float()
    cls = ((prob - onehot) ** 2).sum(1)[has].sum()
    return {"loss": (coord + obj + no + cls) / n, "coord": coord.detach() / n, "obj": obj.detach() / n,
            "noobj": no.detach() / n, "cls": cls.detach() / n}
