"""Part-segmentation mIoU as ShapeNet-part reports it.

For one shape of class c with parts P_c: IoU_p = |pred = p and true = p| / |pred = p or true = p| for every
p in P_c, counted as 1 when p is absent from both; the shape's score is the mean over P_c. Instance mIoU
averages the shapes; class mIoU averages, over classes, the mean of that class's shapes.
"""

from __future__ import annotations

import torch


def shape_ious(pred: torch.Tensor, true: torch.Tensor, y: torch.Tensor, class_parts: list[list[int]]) -> torch.Tensor:
    """pred, true: (B, N) part ids; y: (B,) class ids -> (B,) mean IoU over each shape's class parts."""
    out = torch.empty(len(y), dtype=torch.float64)
    for b in range(len(y)):
        ious = []
        for p in class_parts[int(y[b])]:
            inter = ((pred[b] == p) & (true[b] == p)).sum().item()
            union = ((pred[b] == p) | (true[b] == p)).sum().item()
            ious.append(1.0 if union == 0 else inter / union)
        out[b] = sum(ious) / len(ious)
    return out


def part_miou(pred: torch.Tensor, true: torch.Tensor, y: torch.Tensor, class_parts: list[list[int]]) -> dict[str, float]:
    ious = shape_ious(pred, true, y, class_parts)
    per_class = [ious[y == c].mean().item() for c in range(len(class_parts)) if (y == c).any()]
    return {"instance_miou": ious.mean().item(), "class_miou": sum(per_class) / len(per_class)}
