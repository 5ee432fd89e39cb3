"""Box operations in torch: conversions, IoU, GIoU, DIoU and non-maximum suppression.

Boxes are (..., 4) tensors in `xyxy` = (x0, y0, x1, y1) pixels unless a name says otherwise; a box's
area is (x1 - x0)(y1 - y0) (no +1: coordinates are continuous, as in COCO and torchvision).

    IoU(a, b)  = |a ∩ b| / |a ∪ b|
    GIoU(a, b) = IoU - |C \\ (a ∪ b)| / |C|              C: the smallest box enclosing a and b
    DIoU(a, b) = IoU - ρ²(centre_a, centre_b) / c²       c: the diagonal of C

NMS keeps the highest-scoring box, drops every other box whose IoU with it is strictly above the
threshold, and repeats on what is left.
"""

from __future__ import annotations

import torch


# --- conversions --------------------------------------------------------------------------------

def xyxy_to_xywh(b: torch.Tensor) -> torch.Tensor:
    """(x0, y0, x1, y1) -> (x0, y0, w, h), the COCO JSON layout."""
    x0, y0, x1, y1 = b.unbind(-1)
    return torch.stack([x0, y0, x1 - x0, y1 - y0], -1)


def xywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    x0, y0, w, h = b.unbind(-1)
    return torch.stack([x0, y0, x0 + w, y0 + h], -1)


def xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    """(x0, y0, x1, y1) -> (centre x, centre y, w, h)."""
    x0, y0, x1, y1 = b.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], -1)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def box_area(b: torch.Tensor) -> torch.Tensor:
    return (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)


# --- overlaps -----------------------------------------------------------------------------------

def _inter_union(a: torch.Tensor, b: torch.Tensor, pairwise: bool):
    if pairwise:  # (N, 4), (M, 4) -> (N, M)
        a, b = a[:, None, :], b[None, :, :]
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a) + box_area(b) - inter
    return inter, union, a, b


def box_iou(a: torch.Tensor, b: torch.Tensor, pairwise: bool = True, eps: float = 0.0) -> torch.Tensor:
    """IoU of every box in a (N, 4) with every box in b (M, 4) -> (N, M); or elementwise when
    pairwise=False (shapes broadcast). Two empty boxes have IoU 0 when eps > 0, NaN when eps = 0."""
    inter, union, _, _ = _inter_union(a, b, pairwise)
    return inter / (union + eps)


def _enclosing(a: torch.Tensor, b: torch.Tensor):
    lt = torch.minimum(a[..., :2], b[..., :2])
    rb = torch.maximum(a[..., 2:], b[..., 2:])
    return lt, rb


def generalized_box_iou(a: torch.Tensor, b: torch.Tensor, pairwise: bool = True, eps: float = 0.0) -> torch.Tensor:
    """GIoU = IoU - (|C| - |a ∪ b|) / |C|, in [-1, 1]."""
    inter, union, a, b = _inter_union(a, b, pairwise)
    lt, rb = _enclosing(a, b)
    wh = (rb - lt).clamp(min=0)
    enclosing = wh[..., 0] * wh[..., 1]
    return inter / (union + eps) - (enclosing - union) / (enclosing + eps)


def distance_box_iou(a: torch.Tensor, b: torch.Tensor, pairwise: bool = True, eps: float = 1e-7) -> torch.Tensor:
    """DIoU = IoU - ρ²/c²: squared distance of the centres over the squared diagonal of C."""
    inter, union, a, b = _inter_union(a, b, pairwise)
    lt, rb = _enclosing(a, b)
    c2 = ((rb - lt) ** 2).sum(-1)
    centre_a = (a[..., :2] + a[..., 2:]) / 2
    centre_b = (b[..., :2] + b[..., 2:]) / 2
    rho2 = ((centre_a - centre_b) ** 2).sum(-1)
    return inter / (union + eps) - rho2 / (c2 + eps)


# --- non-maximum suppression --------------------------------------------------------------------

def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS over boxes (N, 4) with scores (N,): indices of the kept boxes, by decreasing score.
    A box is dropped when its IoU with a kept, higher-scoring box is strictly above iou_threshold.
    Ties in score keep the earlier index first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order], eps=1e-12)  # (N, N), in score order
    over = (iou > iou_threshold).cpu()
    alive = torch.ones(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if alive[i]:
            keep.append(i)
            alive &= ~over[i]
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """NMS within each class separately (boxes of different classes never suppress each other);
    indices kept, by decreasing score."""
    keep = [idx[nms(boxes[idx], scores[idx], iou_threshold)]
            for c in classes.unique() for idx in [torch.nonzero(classes == c).flatten()]]
    if not keep:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    keep = torch.cat(keep)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
