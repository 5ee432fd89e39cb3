"""Image-pyramid (multi-scale) testing: run a detector on resized copies of each image and merge.

For each scale s the image is resized by s (bilinear) and padded with background to a multiple of
the network's stride; boxes found there are divided by s. The detections of all scales are pooled
and NMS'd per class; the best `max_dets` are kept. Up-scaling shows small objects at sizes the
network sees well; down-scaling does the same for large ones.

Pooling every scale's detections also pools their mistakes: a large object blown up beyond the sizes
seen in training yields confident wrong boxes. With `upscaled_max_size` > 0 a scale s > 1 contributes
only boxes whose size in the original image, sqrt(area), is at most that many pixels — each scale
answers for the objects it makes look familiar (the idea of SNIP's valid ranges, Singh & Davis 2018).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from deepatlas.vision.boxes import batched_nms, box_area

Detections = dict[str, torch.Tensor]  # boxes (K, 4) xyxy pixels, scores (K,), labels (K,)


def resize_padded(x: torch.Tensor, scale: float, multiple: int, fill: float = -1.0) -> torch.Tensor:
    h, w = x.shape[-2:]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    y = x if (nh, nw) == (h, w) else F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    ph, pw = -nh % multiple, -nw % multiple
    return F.pad(y, (0, pw, 0, ph), value=fill) if ph or pw else y


def pyramid_detect(detect: Callable[[torch.Tensor], list[Detections]], x: torch.Tensor, scales: list[float],
                   multiple: int, nms_iou: float, max_dets: int, upscaled_max_size: float = 0.0) -> list[Detections]:
    """detect: (N, C, H, W) -> per-image detections in that image's pixels."""
    per_scale = []
    for s in scales:
        dets = [{**d, "boxes": d["boxes"] / s} for d in detect(resize_padded(x, s, multiple))]
        if s > 1 and upscaled_max_size > 0:
            dets = [{k: v[box_area(d["boxes"]).sqrt() <= upscaled_max_size] for k, v in d.items()} for d in dets]
        per_scale.append(dets)
    if len(scales) == 1:
        return per_scale[0]
    out = []
    for i in range(len(x)):
        boxes = torch.cat([p[i]["boxes"] for p in per_scale])
        scores = torch.cat([p[i]["scores"] for p in per_scale])
        labels = torch.cat([p[i]["labels"] for p in per_scale])
        keep = batched_nms(boxes, scores, labels, nms_iou)[:max_dets]
        out.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
    return out
