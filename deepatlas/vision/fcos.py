"""FCOS (Tian et al., 2019): anchor-free, one prediction per feature-map location.

Each location of a map with stride s regresses its distances (l, t, r, b) to the four sides of the
object it is assigned to, each predicted as exp(σ_k · u) · s (u: the raw output, σ_k: a learned scale
per map), plus class logits and a centerness logit. Which location takes which object (the inside-box
and m-range rule, FPN's size ranges, the fallback for boxes smaller than a stride) is in
`vision/fcos_targets.py`; the focal loss in `vision/focal_losses.py`.

Loss = focal(classes) / N_pos + mean over positives of [-ln IoU(pred, box)] + BCE(centerness).
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
from deepatlas.vision.detector import Detector, DetectorConfig, Level
from deepatlas.vision.fcos_targets import FPN_RANGES, MAX_GROW, assign_levels, locations, ltrb_iou
from deepatlas.vision.focal_losses import focal_loss


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
