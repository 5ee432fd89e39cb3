"""Which FCOS location learns which object (Tian et al., 2019), and the geometry of its targets.

A location (x, y) = (s·j + s/2, s·i + s/2) of a map with stride s that falls inside an object's box
has the distances (l, t, r, b) = (x - x0, y - y0, x1 - x, y1 - y) to its four sides. It is positive for
the object if it is inside the box and m = max(l, t, r, b) lies in the map's range (both ends
inclusive, as in the FCOS code); inside several boxes it takes the smallest. With FPN the maps P2, P3,
P4 (strides 4, 8, 16) take m in [0, 8], [8, 16], [16, ∞) pixels: FCOS's ranges [4s, 8s] rescaled to our
96-pixel canvas. Without FPN one map (C4, stride 16) takes every object.

A box smaller than a stride can hold no location centre at all (about a quarter of the 3-5 pixel
boxes of our scenes did, and were never trained on): such an object takes the location nearest its
centre on its size's map, if that location lies outside the box by at most 10% of its size
(`assign_levels`, `--model-fallback-grow`); with FPN every object of our scenes then has a positive.

  IoU of two (l, t, r, b) boxes around one point: I / (A_p + A_t - I),
      I = (min(l, l') + min(r, r')) · (min(t, t') + min(b, b'));
  centerness* = sqrt( min(l, r)/max(l, r) · min(t, b)/max(t, b) ), 1 at the box centre, 0 at an edge.
"""

from __future__ import annotations

import math

import torch

from deepatlas.vision.boxes import box_area

FPN_RANGES = ((0.0, 8.0), (8.0, 16.0), (16.0, math.inf))
MIN_DIST = 0.1  # pixels: the smallest side distance a fallback location's target may have
MAX_GROW = 0.1  # default: a fallback location may lie outside its box by at most this fraction of max(w, h)


def ltrb_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of two boxes given as distances (l, t, r, b) from the same point, (..., 4)."""
    area_p = (pred[..., 0] + pred[..., 2]) * (pred[..., 1] + pred[..., 3])
    area_t = (target[..., 0] + target[..., 2]) * (target[..., 1] + target[..., 3])
    w = torch.minimum(pred[..., 0], target[..., 0]) + torch.minimum(pred[..., 2], target[..., 2])
    h = torch.minimum(pred[..., 1], target[..., 1]) + torch.minimum(pred[..., 3], target[..., 3])
    inter = w.clamp(min=0) * h.clamp(min=0)
    return inter / (area_p + area_t - inter)


def centerness(ltrb: torch.Tensor) -> torch.Tensor:
    l, t, r, b = ltrb.unbind(-1)
    return torch.sqrt((torch.minimum(l, r) / torch.maximum(l, r)) * (torch.minimum(t, b) / torch.maximum(t, b)))


def locations(h: int, w: int, stride: int, device=None) -> torch.Tensor:
    """Pixel centres of a map's cells, (h*w, 2) as (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).float() * stride + stride / 2


def assign(points: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, m_range) -> tuple[torch.Tensor, torch.Tensor]:
    """For one image: points (P, 2), boxes (M, 4), labels (M,) -> (class per point, -1 = background;
    (l, t, r, b) targets (P, 4)). Inside-box and m-range rule; ambiguous points take the smallest box."""
    cls, ltrb, _ = _assign(points, boxes, labels, m_range)
    return cls, ltrb


def _assign(points, boxes, labels, m_range):
    """assign() plus the index of each point's object (-1: background)."""
    x, y = points[:, 0:1], points[:, 1:2]
    ltrb = torch.stack([x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], -1)  # (P, M, 4)
    inside = ltrb.min(-1).values > 0
    m = ltrb.max(-1).values
    ok = inside & (m >= m_range[0]) & (m <= m_range[1]) & (labels >= 0)[None]  # both ends inclusive, as FCOS's code
    area = torch.where(ok, box_area(boxes)[None].expand_as(ok), torch.full_like(m, math.inf))
    best_area, best = area.min(1)
    found = torch.isfinite(best_area)
    cls = torch.where(found, labels[best], -1)
    return cls, ltrb[torch.arange(len(points), device=points.device), best], torch.where(found, best, -1)


def assign_levels(points: list[torch.Tensor], boxes: torch.Tensor, labels: list[torch.Tensor], m_ranges: list,
                  max_grow: float = MAX_GROW) -> list:
    """One image over all maps: points[k] (P_k, 2), boxes (M, 4), labels[k] (M,) (the objects map k may take),
    m_ranges[k] -> per map (class (P_k,), (l, t, r, b) (P_k, 4), centerness target (P_k,)).

    The inside-box and m-range rule first; then every object that got no location anywhere (boxes smaller
    than a stride can fall between the location centres) takes the free location nearest its centre on
    the map its half-size max(w, h) / 2 falls in. That location may lie just outside the box (by less than
    half a stride): its distances are clamped to >= MIN_DIST, i.e. the target box grows to reach it, and
    its centerness target is 1, since it stands for the object's centre. Only where the growth is at most
    `max_grow` of the box's size (negative: no fallback at all). On our scenes with FPN every object then
    has a positive (tested on a scene batch); a single coarse map (plain C4, stride 16) keeps most small
    boxes without one, as FCOS without FPN does: growing them taught wrong sizes (bench/RESULTS.md)."""
    out, covered = [], torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    for pts, lab, rng in zip(points, labels, m_ranges):
        cls, ltrb, obj = _assign(pts, boxes, lab, rng)
        ctr = torch.where(cls >= 0, centerness(ltrb.clamp(min=MIN_DIST)), torch.zeros_like(ltrb[:, 0]))
        covered[obj[obj >= 0]] = True
        out.append([cls, ltrb, ctr])
    taken = [torch.zeros(len(p), dtype=torch.bool, device=boxes.device) for p in points]  # fallback locations
    for j in torch.nonzero(~covered).flatten().tolist():
        maps = [k for k in range(len(points)) if labels[k][j] >= 0]
        if not maps:
            continue  # padding, crowd, or outside every trident branch: no object to find
        half = float((boxes[j, 2:] - boxes[j, :2]).max()) / 2
        k = next((k for k in maps if m_ranges[k][0] <= half <= m_ranges[k][1]), maps[0])
        centre = (boxes[j, :2] + boxes[j, 2:]) / 2
        d2 = (points[k] - centre).pow(2).sum(-1).masked_fill(taken[k], math.inf)
        p = int(d2.argmin())
        x, y = points[k][p]
        d = torch.stack([x - boxes[j, 0], y - boxes[j, 1], boxes[j, 2] - x, boxes[j, 3] - y])
        if max_grow < 0 or float(-d.min()) > max_grow * 2 * half:
            continue  # the map is too coarse for the box (plain C4 and a 4 px object): growing it would teach a wrong size
        taken[k][p] = True
        out[k][0][p] = labels[k][j]
        out[k][1][p] = d.clamp(min=MIN_DIST)
        out[k][2][p] = 1.0
    return out
