"""FCOS (Tian et al., 2019): anchor-free, one prediction per feature-map location.

A location (x, y) = (s·j + s/2, s·i + s/2) of a map with stride s that falls inside an object's box
regresses its distances to the four sides, (l, t, r, b) = (x - x0, y - y0, x1 - x, y1 - y), each
predicted as exp(σ_k · u) · s (u: the raw output, σ_k: a learned scale per map). A location is
positive for the object if it is inside the box and m = max(l, t, r, b) lies in the map's range
(both ends inclusive, as in the FCOS code); inside several boxes it takes the smallest. With FPN the
maps P2, P3, P4 (strides 4, 8, 16) take m in [0, 8], [8, 16], [16, ∞) pixels: FCOS's ranges [4s, 8s]
rescaled to our 96-pixel canvas. Without FPN one map (C4, stride 16) takes every object.
A box smaller than a stride can hold no location centre at all (about a quarter of the 3-5 pixel
boxes of our scenes did, and were never trained on): such an object takes the location nearest its
centre on its size's map, if that location lies outside the box by at most 10% of its size
(`assign_levels`, `--model-fallback-grow`); with FPN every object of our scenes then has a positive.

Loss = focal(classes) / N_pos + mean over positives of [-ln IoU(pred, box)] + BCE(centerness),
  focal: FL(p_t) = -α_t (1 - p_t)^γ ln p_t, α = 0.25, γ = 2 (classes as independent sigmoids);
  centerness* = sqrt( min(l, r)/max(l, r) · min(t, b)/max(t, b) ), 1 at the box centre, 0 at an edge.
Test: score = p(class) · centerness, top candidates per map, per-class NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.registry import register_method
from deepatlas.vision.boxes import box_area
from deepatlas.vision.detector import Detector, DetectorConfig, Level

FPN_RANGES = ((0.0, 8.0), (8.0, 16.0), (16.0, math.inf))
MIN_DIST = 0.1  # pixels: the smallest side distance a fallback location's target may have
MAX_GROW = 0.1  # default: a fallback location may lie outside its box by at most this fraction of max(w, h)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sum of -α_t (1 - p_t)^γ ln p_t over all entries (Lin et al., 2017); targets in {0, 1}."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    a_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (a_t * (1 - p_t) ** gamma * ce).sum()


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


@register_method("fcos", "vision", "FCOS: anchor-free (l,t,r,b) per location, centerness, focal + IoU loss, FPN levels by size")
class FCOS(Detector):
    @dataclass
    class Config(DetectorConfig):
        focal_alpha: float = option(0.25, "focal loss α", low=0.0, high=1.0)
        focal_gamma: float = option(2.0, "focal loss γ", low=0.0)
        candidates: int = option(100, "top candidates per map before NMS", low=1)
        fallback_grow: float = option(MAX_GROW, "an object with no location inside it takes the nearest one if that lies "
                                      "outside the box by at most this fraction of its size (-1: never)", low=-1.0)

    fpn_levels = (0, 1, 2)  # P2, P3, P4
    defaults = {**Detector.defaults, "model": {"nms_iou": 0.6}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c = self.channels
        self.cls_tower = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(8, c), nn.ReLU())
        self.reg_tower = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(8, c), nn.ReLU())
        self.cls = nn.Conv2d(c, self.num_classes, 3, padding=1)
        self.reg = nn.Conv2d(c, 4, 3, padding=1)
        self.ctr = nn.Conv2d(c, 1, 3, padding=1)
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))  # prior p = 0.01 (RetinaNet)
        self.scales = nn.Parameter(torch.ones(self.n_maps))

    def head(self, feat: torch.Tensor, level: Level) -> dict:
        r = self.reg_tower(feat)
        u = (self.scales[level.index] * self.reg(r)).clamp(max=10)
        return {"cls": self.cls(self.cls_tower(feat)), "ltrb": torch.exp(u) * level.stride, "ctr": self.ctr(r)[:, 0]}

    def m_range(self, level: Level, n_levels: int):
        return FPN_RANGES[level.index] if self.cfg.fpn and n_levels == 3 else (0.0, math.inf)

    def compute_loss(self, levels: list[Level], boxes, labels) -> dict:
        outs = [self.head(lv.feat, lv) for lv in levels]
        pts = [locations(o["cls"].shape[2], o["cls"].shape[3], lv.stride, lv.feat.device) for o, lv in zip(outs, levels)]
        labs = [self.in_range(boxes, labels, lv.size_range) for lv in levels]
        ranges = [self.m_range(lv, len(levels)) for lv in levels]
        per_img = [assign_levels(pts, boxes[i], [lab[i] for lab in labs], ranges, self.cfg.fallback_grow)
                   for i in range(len(boxes))]
        cls_t = torch.cat([torch.stack([img[k][0] for img in per_img]) for k in range(len(levels))], 1)  # (N, P)
        ltrb_t = torch.cat([torch.stack([img[k][1] for img in per_img]) for k in range(len(levels))], 1)  # (N, P, 4)
        ctr_t = torch.cat([torch.stack([img[k][2] for img in per_img]) for k in range(len(levels))], 1)  # (N, P)
        cls_logits = torch.cat([o["cls"].flatten(2).transpose(1, 2) for o in outs], 1)  # (N, P, C)
        ltrb_pred = torch.cat([o["ltrb"].flatten(2).transpose(1, 2) for o in outs], 1)
        ctr_logits = torch.cat([o["ctr"].flatten(1) for o in outs], 1)
        pos = cls_t >= 0
        n_pos = max(1, int(pos.sum()))
        onehot = F.one_hot(cls_t.clamp(min=0), self.num_classes).float() * pos[..., None]
        l_cls = focal_loss(cls_logits, onehot, self.cfg.focal_alpha, self.cfg.focal_gamma) / n_pos
        if pos.any():
            iou = ltrb_iou(ltrb_pred[pos], ltrb_t[pos]).clamp(min=1e-6)
            l_iou = -torch.log(iou).mean()
            l_ctr = F.binary_cross_entropy_with_logits(ctr_logits[pos], ctr_t[pos])
        else:
            l_iou = l_ctr = 0.0 * ltrb_pred.sum()
        return {"loss": l_cls + l_iou + l_ctr, "focal": l_cls.detach(), "iou": l_iou.detach(),
                "centerness": l_ctr.detach(), "positives": float(pos.sum()) / len(pos)}

    def decode(self, out: dict, level: Level) -> list[dict]:
        n, C, h, w = out["cls"].shape
        pts = locations(h, w, level.stride, out["cls"].device)
        score = torch.sigmoid(out["cls"]).flatten(2) * torch.sigmoid(out["ctr"]).flatten(1)[:, None]  # (N, C, P)
        ltrb = out["ltrb"].flatten(2).transpose(1, 2)  # (N, P, 4)
        res = []
        for i in range(n):
            s, idx = score[i].flatten().topk(min(self.cfg.candidates, score[i].numel()))
            c, p = idx // (h * w), idx % (h * w)
            x, y = pts[p, 0], pts[p, 1]
            d = ltrb[i, p]
            res.append({"boxes": torch.stack([x - d[:, 0], y - d[:, 1], x + d[:, 2], y + d[:, 3]], -1),
                        "scores": s, "labels": c})
        return res
