"""CenterNet's targets and peaks (Zhou et al., 2019, "Objects as Points"): where an object's Gaussian
goes on the class heatmap, how wide it is, and how boxes are read back from peaks.

An object with centre c (pixels) sits at the low-resolution point p = ⌊c / R⌋. Its class
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

Peaks: cells equal to the max of their 3x3 neighbourhood (a max-pool, no NMS).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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


def splat(boxes: torch.Tensor, labels: torch.Tensor, shape: tuple[int, int, int, int], radius, min_overlap: float):
    """Targets on a (N, C, h, w) map at stride R from boxes (N, M, 4) in pixels and labels (N, M) (-1: none):
    the heatmap Y, and per object its (image, y, x) peak cell, offset and size in cells. `radius(h, w, t)`
    is the Gaussian radius rule. Splatted object by object in Python, so on the CPU."""
    n, C, h, w = shape
    boxes, labels = boxes.cpu(), labels.cpu()
    heat = torch.zeros(n, C, h, w)
    idx_i, idx_y, idx_x, t_off, t_size = [], [], [], [], []
    for i, k in torch.nonzero(labels >= 0).tolist():
        x0, y0, x1, y1 = (boxes[i, k] / R).tolist()
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        px, py = min(int(cx), w - 1), min(int(cy), h - 1)
        r = max(0, int(radius(math.ceil(y1 - y0), math.ceil(x1 - x0), min_overlap)))
        draw_gaussian(heat[i, labels[i, k]], px, py, r)
        idx_i.append(i), idx_y.append(py), idx_x.append(px)
        t_off.append([cx - px, cy - py]), t_size.append([x1 - x0, y1 - y0])
    return heat, idx_i, idx_y, idx_x, t_off, t_size


def peaks(heat: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """Top-k local maxima of heat (N, C, h, w): a cell is kept if it equals its 3x3 max-pool.
    -> scores, classes, ys, xs, each (N, k)."""
    n, c, h, w = heat.shape
    keep = heat == F.max_pool2d(heat, 3, stride=1, padding=1)
    scores, idx = (heat * keep).flatten(1).topk(min(k, c * h * w))
    cls, pix = idx // (h * w), idx % (h * w)
    return scores, cls, pix // w, pix % w
