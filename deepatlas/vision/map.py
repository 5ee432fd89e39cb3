"""COCO mean average precision, our own implementation of the COCO definition (pycocotools' COCOeval
for boxes), so that it runs without pycocotools and agrees with it on the same detections.

For each class c, IoU threshold t in {0.50, 0.55, ..., 0.95} and area band:
1. per image, detections of c sorted by score (at most `max_dets`) are matched greedily, best score
   first, to the not-yet-matched ground truth with the highest IoU >= t; ground truth outside the
   band (or `iscrowd`) is "ignored": a detection matched to it counts neither way, and an unmatched
   detection outside the band is ignored too;
2. over all images, detections are sorted by score; precision p(k) = TP(k) / k and recall
   r(k) = TP(k) / G (G: non-ignored ground truth); p is made non-increasing from the right;
3. AP = mean over the 101 recall points r in {0, 0.01, ..., 1} of p at the first k with r(k) >= r
   (0 when recall never reaches r).
AP is the mean over classes that have ground truth in the band, then over thresholds. AP50 and AP75
use one threshold; AP_small / AP_medium / AP_large use all ten and one band.

Areas: a band is decided on `ImageTruth.areas` / `ImageDetections.areas` where given (COCO files: the
annotation's `area` and the detection's w*h, both in original image pixels, as pycocotools does), else on
the boxes' own areas.

Crowd ground truth follows COCO: IoU with it is |d ∩ g| / |d|, and it may absorb many detections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # the same floats pycocotools uses
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_BANDS = (32.0 ** 2, 96.0 ** 2)  # small < 32², large > 96² pixels (COCO, ~640-pixel images)


@dataclass
class ImageTruth:
    boxes: np.ndarray  # (G, 4) xyxy
    labels: np.ndarray  # (G,)
    iscrowd: np.ndarray | None = None  # (G,) bool
    areas: np.ndarray | None = None  # (G,); default: box areas


@dataclass
class ImageDetections:
    boxes: np.ndarray  # (D, 4) xyxy
    scores: np.ndarray  # (D,)
    labels: np.ndarray  # (D,)
    areas: np.ndarray | None = None  # (D,) for the size bands; default: box areas


def _area(b: np.ndarray) -> np.ndarray:
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _iou(d: np.ndarray, g: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """(D, G) IoU in float64; for crowd ground truth the union is the detection's area."""
    lt = np.maximum(d[:, None, :2], g[None, :, :2])
    rb = np.minimum(d[:, None, 2:], g[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    ad, ag = _area(d)[:, None], _area(g)[None, :]
    union = np.where(crowd[None, :], ad, ad + ag - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _match(det: ImageDetections, gt: ImageTruth, c: int, band: tuple[float, float], max_dets: int):
    """One image and class: per threshold, which detections are TP and which are ignored.
    Returns (scores (D,), tp (T, D), ignored (T, D), number of non-ignored ground truth)."""
    gsel = gt.labels == c
    g = gt.boxes[gsel].astype(np.float64)
    crowd = (gt.iscrowd[gsel] if gt.iscrowd is not None else np.zeros(len(g), bool)).astype(bool)
    garea = gt.areas[gsel] if gt.areas is not None else _area(g)
    gignore = crowd | (garea < band[0]) | (garea > band[1])
    gorder = np.argsort(gignore, kind="stable")  # non-ignored ground truth first
    g, crowd, gignore = g[gorder], crowd[gorder], gignore[gorder]

    dsel = np.nonzero(det.labels == c)[0]
    dorder = dsel[np.argsort(-det.scores[dsel], kind="stable")][:max_dets]
    d, scores = det.boxes[dorder].astype(np.float64), det.scores[dorder]
    T, D, G = len(IOU_THRESHOLDS), len(d), len(g)
    tp = np.zeros((T, D), bool)
    ignored = np.zeros((T, D), bool)
    if D and G:
        ious = _iou(d, g, crowd)
        for ti, t in enumerate(IOU_THRESHOLDS):
            taken = np.zeros(G, bool)
            for di in range(D):
                best, m = min(t, 1 - 1e-10), -1
                for gi in range(G):
                    if taken[gi] and not crowd[gi]:
                        continue
                    if m > -1 and not gignore[m] and gignore[gi]:
                        break  # a real match beats any ignored one (ignored ground truth is sorted last)
                    if ious[di, gi] < best:
                        continue
                    best, m = ious[di, gi], gi
                if m > -1:
                    taken[m] = True
                    ignored[ti, di] = gignore[m]
                    tp[ti, di] = True
    darea = (det.areas[dorder] if det.areas is not None else _area(d)) if D else np.zeros(0)
    outside = (darea < band[0]) | (darea > band[1])
    ignored |= ~tp & outside[None, :]
    return scores, tp, ignored, int((~gignore).sum())


def _average_precision(scores, tp, ignored, n_gt) -> np.ndarray:
    """AP per threshold (T,) from detections pooled over images; NaN when there is no ground truth."""
    if n_gt == 0:
        return np.full(len(IOU_THRESHOLDS), np.nan)
    order = np.argsort(-scores, kind="mergesort")
    tp, ignored = tp[:, order], ignored[:, order]
    out = np.zeros(len(IOU_THRESHOLDS))
    for ti in range(len(IOU_THRESHOLDS)):
        keep = ~ignored[ti]
        tps = np.cumsum(tp[ti][keep]).astype(np.float64)
        fps = np.cumsum(~tp[ti][keep]).astype(np.float64)
        recall = tps / n_gt
        precision = tps / (tps + fps + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)] if len(precision) else 0, 0)
        out[ti] = q.mean()
    return out


def coco_map(detections: list[ImageDetections], truths: list[ImageTruth], num_classes: int,
             bands: tuple[float, float] = COCO_BANDS, max_dets: int = 100) -> dict[str, float]:
    """AP, AP50, AP75, AP_small, AP_medium, AP_large (in [0, 1]; -1 where a band has no ground truth).
    `bands` = (small/medium, medium/large) area thresholds in pixels²."""
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} detection lists for {len(truths)} images")
    ranges = {"all": (0.0, 1e10), "small": (0.0, bands[0]), "medium": (bands[0], bands[1]),
              "large": (bands[1], 1e10)}
    per_range = {}
    for name, band in ranges.items():
        aps = []
        for c in range(num_classes):
            parts = [_match(d, g, c, band, max_dets) for d, g in zip(detections, truths)]
            scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
            tp = np.concatenate([p[1] for p in parts], axis=1) if parts else np.zeros((10, 0), bool)
            ign = np.concatenate([p[2] for p in parts], axis=1) if parts else np.zeros((10, 0), bool)
            aps.append(_average_precision(scores, tp, ign, sum(p[3] for p in parts)))
        per_range[name] = np.array(aps)  # (C, T)

    def mean(a):
        a = a[~np.isnan(a)]
        return float(a.mean()) if a.size else -1.0

    return {"AP": mean(per_range["all"]), "AP50": mean(per_range["all"][:, 0]),
            "AP75": mean(per_range["all"][:, 5]), "AP_small": mean(per_range["small"]),
            "AP_medium": mean(per_range["medium"]), "AP_large": mean(per_range["large"])}
