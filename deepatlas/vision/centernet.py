"""CenterNet, "Objects as Points" (Zhou et al., 2019): an object is the peak of a class heatmap at
output stride R = 4, plus a sub-pixel offset and a size regressed at that peak.

Targets. An object with centre c (pixels) sits at the low-resolution point p = ⌊c / R⌋. Its class
heatmap gets a Gaussian exp(-|q - p|² / (2σ²)) (element-wise max where Gaussians overlap), with
σ = (2r + 1) / 6 and r the radius from CornerNet's rule: the largest r such that a box whose corners
are moved by r still has IoU >= 0.7 with the object, taking the worst of three cases — one corner in
and one out, both corners in, both out — for a box of h x w (in map cells):

  both shifted one way: (h-r)(w-r) / (2hw - (h-r)(w-r)) = t  ->  r² - (h+w) r + hw(1-t)/(1+t) = 0
  both in (shrunk):     (h-2r)(w-2r) / hw = t                ->  4r² - 2(h+w) r + (1-t) hw = 0
  both out (grown):     hw / ((h+2r)(w+2r)) = t              ->  4t r² + 2t(h+w) r + (t-1) hw = 0

We take the smaller root of the first two quadratics and the positive root of the third, each
(-b ∓ sqrt(b² - 4ac)) / 2a, and, like CenterNet, r = max(0, ⌊r⌋), with h and w first rounded up to whole
cells (the reference computes the radius from ceil(h), ceil(w)). CornerNet's released
`gaussian_radius` (reused by CenterNet) computes (b + sqrt(b² - 4ac)) / 2 in all three cases: the
larger root where the smaller is meant (cases 1 and 2), b of the wrong sign (case 3), and /2 instead
of /2a where a ≠ 1 — the known algebra slip. Its radius comes out 3.35x ours for square boxes
(10x10 cells: 2.73 vs 0.82), and a box moved by it keeps an IoU of only 0.21, not 0.7. Ours makes the
binding case's IoU exactly t (tested). On our small maps the corrected radius floors to 0 for every
box up to 12 cells (48 pixels): single-cell peaks. `--model-radius-rule cornernet` uses the released
formula instead, for comparison (bench/RESULTS.md).

Loss = focal_hm / N + L1(offset) / 2N + 0.1 · L1(size) / 2N over the N objects (the L1 sums run over both
coordinates and are divided by 2N, as the reference implementation's RegL1Loss divides by its mask
expanded to both channels: a mean absolute error per coordinate), with the
penalty-reduced focal loss on the heatmap Ŷ against Y:
  -(1 - Ŷ)^α ln Ŷ where Y = 1,  -(1 - Y)^β Ŷ^α ln(1 - Ŷ) elsewhere (α = 2, β = 4).
Test: peaks are cells equal to the max of their 3x3 neighbourhood (a max-pool, no NMS); the top 100
peaks give boxes (p + offset ± size / 2) · R.

The head reads P2 with FPN; without FPN, C4 bilinearly upsampled x4 (this small backbone has no
up-sampling path of its own); with trident branches, each branch upsampled and the branches merged
by NMS (the only place CenterNet here uses NMS).
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

R = 4  # output stride


def gaussian_radius(h: float, w: float, min_iou: float = 0.7) -> float:
    """Largest corner displacement r keeping IoU >= min_iou in all three cases (corrected algebra)."""
    t = min_iou
    b1, c1 = h + w, h * w * (1 - t) / (1 + t)
    r1 = (b1 - math.sqrt(b1 ** 2 - 4 * c1)) / 2
    a2, b2, c2 = 4, -2 * (h + w), (1 - t) * h * w
    r2 = (-b2 - math.sqrt(b2 ** 2 - 4 * a2 * c2)) / (2 * a2)
    a3, b3, c3 = 4 * t, 2 * t * (h + w), (t - 1) * h * w
    r3 = (-b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / (2 * a3)
    return min(r1, r2, r3)


def gaussian_radius_cornernet(h: float, w: float, min_iou: float = 0.7) -> float:
    """The radius of CornerNet's released code, slip included (see the module docstring)."""
    t = min_iou
    b1, c1 = h + w, h * w * (1 - t) / (1 + t)
    b2, c2 = 2 * (h + w), (1 - t) * h * w
    a3, b3, c3 = 4 * t, -2 * t * (h + w), (t - 1) * h * w
    return min((b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2, (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2,
               (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2)


def draw_gaussian(heat: torch.Tensor, cx: int, cy: int, radius: int) -> None:
    """heat (h, w) <- max(heat, Gaussian of σ = (2r+1)/6 centred at (cx, cy), cut at radius r)."""
    sigma = (2 * radius + 1) / 6
    h, w = heat.shape
    x0, x1 = max(0, cx - radius), min(w, cx + radius + 1)
    y0, y1 = max(0, cy - radius), min(h, cy + radius + 1)
    ys, xs = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
    g = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
    heat[y0:y1, x0:x1] = torch.maximum(heat[y0:y1, x0:x1], g)


def penalty_reduced_focal(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Sum of the CornerNet/CenterNet heatmap focal loss; target is the splatted heatmap Y."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target >= 1
    pos_loss = -((1 - p) ** alpha * torch.log(p))[pos].sum()
    neg_loss = -((1 - target) ** beta * p ** alpha * torch.log(1 - p))[~pos].sum()
    return pos_loss + neg_loss


def peaks(heat: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """Top-k local maxima of heat (N, C, h, w): a cell is kept if it equals its 3x3 max-pool.
    -> scores, classes, ys, xs, each (N, k)."""
    n, c, h, w = heat.shape
    keep = heat == F.max_pool2d(heat, 3, stride=1, padding=1)
    scores, idx = (heat * keep).flatten(1).topk(min(k, c * h * w))
    cls, pix = idx // (h * w), idx % (h * w)
    return scores, cls, pix // w, pix % w


@register_method("centernet", "vision", "CenterNet: class heatmaps with Gaussian splats, offsets and sizes, peaks without NMS")
class CenterNet(Detector):
    @dataclass
    class Config(DetectorConfig):
        min_overlap: float = option(0.7, "IoU the Gaussian radius guarantees (CornerNet's rule)", low=0.0, high=1.0)
        size_weight: float = option(0.1, "weight of the size L1 loss", low=0.0)
        radius_rule: str = option("corrected", "Gaussian radius: corrected algebra, or CornerNet's released formula",
                                  choices=("corrected", "cornernet"))

    fpn_levels = (0,)  # P2, stride 4
    uses_nms = False

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        c = self.channels

        def branch(out_ch, bias=0.0):
            conv = nn.Conv2d(c, out_ch, 1)
            nn.init.constant_(conv.bias, bias)
            return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), conv)

        self.heat = branch(self.num_classes, -2.19)  # sigmoid(-2.19) = 0.1, as in CenterNet
        self.offset = branch(2)
        self.size = branch(2)

    def head(self, feat: torch.Tensor, level: Level) -> dict:
        if level.stride != R:
            feat = F.interpolate(feat, scale_factor=level.stride // R, mode="bilinear", align_corners=False)
        return {"heat": self.heat(feat), "offset": self.offset(feat), "size": self.size(feat)}

    def splat(self, boxes: torch.Tensor, labels: torch.Tensor, shape: tuple[int, int, int, int]):
        """Targets on a (N, C, h, w) map: the heatmap Y, and per object its (image, y, x) peak cell, offset and size
        in cells. Splatted object by object in Python, so on the CPU."""
        n, C, h, w = shape
        boxes, labels = boxes.cpu(), labels.cpu()
        heat = torch.zeros(n, C, h, w)
        idx_i, idx_y, idx_x, t_off, t_size = [], [], [], [], []
        for i, k in torch.nonzero(labels >= 0).tolist():
            x0, y0, x1, y1 = (boxes[i, k] / R).tolist()
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            px, py = min(int(cx), w - 1), min(int(cy), h - 1)
            rule = gaussian_radius if self.cfg.radius_rule == "corrected" else gaussian_radius_cornernet
            r = max(0, int(rule(math.ceil(y1 - y0), math.ceil(x1 - x0), self.cfg.min_overlap)))
            draw_gaussian(heat[i, labels[i, k]], px, py, r)
            idx_i.append(i), idx_y.append(py), idx_x.append(px)
            t_off.append([cx - px, cy - py]), t_size.append([x1 - x0, y1 - y0])
        return heat, idx_i, idx_y, idx_x, t_off, t_size

    def level_loss(self, out: dict, level: Level, boxes: torch.Tensor, labels: torch.Tensor) -> dict:
        dev = out["heat"].device
        heat, idx_i, idx_y, idx_x, t_off, t_size = self.splat(boxes, labels, out["heat"].shape)
        n_obj = max(1, len(idx_i))
        l_heat = penalty_reduced_focal(out["heat"], heat.to(dev)) / n_obj
        if idx_i:
            ii, yy, xx = (torch.tensor(v, device=dev) for v in (idx_i, idx_y, idx_x))
            off = out["offset"][ii, :, yy, xx]  # (K, 2)
            size = out["size"][ii, :, yy, xx]
            # / 2N: the reference's RegL1Loss divides by its mask summed over both coordinates
            l_off = (off - torch.tensor(t_off, device=dev)).abs().sum() / (2 * n_obj)
            l_size = (size - torch.tensor(t_size, device=dev)).abs().sum() / (2 * n_obj)
        else:
            l_off = l_size = 0.0 * out["offset"].sum()
        loss = l_heat + l_off + self.cfg.size_weight * l_size
        return {"loss": loss, "heatmap": l_heat.detach(), "offset": l_off.detach(), "size": l_size.detach()}

    def decode(self, out: dict, level: Level) -> list[dict]:
        heat = torch.sigmoid(out["heat"])
        scores, cls, ys, xs = peaks(heat, self.cfg.max_dets)
        res = []
        for i in range(len(heat)):
            off = out["offset"][i, :, ys[i], xs[i]]  # (2, k)
            size = out["size"][i, :, ys[i], xs[i]].clamp(min=0)
            cx, cy = xs[i] + off[0], ys[i] + off[1]
            b = torch.stack([cx - size[0] / 2, cy - size[1] / 2, cx + size[0] / 2, cy + size[1] / 2], -1) * R
            res.append({"boxes": b, "scores": scores[i], "labels": cls[i]})
        return res
