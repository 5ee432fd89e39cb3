"""CenterNet, "Objects as Points" (Zhou et al., 2019): an object is the peak of a class heatmap at
output stride R = 4, plus a sub-pixel offset and a size regressed at that peak.

Targets (`vision/heatmap_targets.py`): a Gaussian on the class heatmap at the object's centre cell,
of a radius from CornerNet's IoU rule, with the algebra of the released code corrected
(`--model-radius-rule cornernet` uses the released formula, for comparison; bench/RESULTS.md).

Loss = focal_hm / N + L1(offset) / 2N + 0.1 · L1(size) / 2N over the N objects (the L1 sums run over both
coordinates and are divided by 2N, as the reference implementation's RegL1Loss divides by its mask
expanded to both channels: a mean absolute error per coordinate), focal_hm being the
penalty-reduced focal loss of the heatmap Ŷ against Y (α = 2, β = 4; `vision/focal_losses.py`).
Test: peaks are cells equal to the max of their 3x3 neighbourhood (a max-pool, no NMS); the top 100
peaks give boxes (p + offset ± size / 2) · R.

The head reads P2 with FPN; without FPN, C4 bilinearly upsampled x4 (this small backbone has no
up-sampling path of its own); with trident branches, each branch upsampled and the branches merged
by NMS (the only place CenterNet here uses NMS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.registry import register_method
from deepatlas.vision.detector import Detector, DetectorConfig, Level
from deepatlas.vision.focal_losses import penalty_reduced_focal
from deepatlas.vision.heatmap_targets import R, gaussian_radius, gaussian_radius_cornernet, peaks, splat


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

    def level_loss(self, out: dict, level: Level, boxes: torch.Tensor, labels: torch.Tensor) -> dict:
        dev = out["heat"].device
        rule = gaussian_radius if self.cfg.radius_rule == "corrected" else gaussian_radius_cornernet
        heat, idx_i, idx_y, idx_x, t_off, t_size = splat(boxes, labels, out["heat"].shape, rule, self.cfg.min_overlap)
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
