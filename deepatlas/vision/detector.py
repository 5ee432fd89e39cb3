"""What every detector shares: the backbone, the neck (plain, FPN or trident branches), training
targets, test-time decoding with optional image pyramid, mAP evaluation and drawing.

A detector subclass says which feature maps its head reads and implements
- `head(feat)` -> raw outputs of one map,
- `level_loss(outputs, level, boxes, labels)` or `compute_loss(levels, boxes, labels)`,
- `decode(outputs, level)` -> per-image candidate detections of one map.

Necks (the same backbone weights in all three):
- plain: the head reads C4 (stride 16), the deepest map, through a 1x1 conv to the head width 2w;
- fpn: the head reads FPN maps P2..P4 (which ones is the detector's choice: `fpn_levels`);
- trident: the last stage runs three times with dilations 1, 2, 3 and shared weights; branch k is
  trained only on objects whose sqrt(area) is in its range (scale-aware training) and, at test time,
  keeps only detections in that range; the branches' detections are merged by NMS.
  Ranges on the 96-pixel canvas (TridentNet's [0,90], [30,160], [90,inf] on ~800-pixel images,
  rescaled to our size bands): [0, 12], [6, 24], [12, inf] pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deepatlas.config import option
from deepatlas.data.base import DETECTION_DATASETS
from deepatlas.errors import UserError
from deepatlas.method import Method
from deepatlas.nn.fpn import FPN
from deepatlas.sample_options import check_type
from deepatlas.vision.backbone import Backbone
from deepatlas.vision.boxes import batched_nms, box_area
from deepatlas.vision.map import ImageDetections, ImageTruth, coco_map
from deepatlas.vision.multiscale import pyramid_detect

TRIDENT_DILATIONS = (1, 2, 3)
TRIDENT_RANGES = ((0.0, 12.0), (6.0, 24.0), (12.0, math.inf))


@dataclass
class Level:
    feat: torch.Tensor  # (N, C, h, w)
    stride: int
    index: int  # position among the maps the head reads (selects per-level parameters)
    size_range: tuple[float, float] | None = None  # trident branch: sqrt(area) range it handles


@dataclass
class DetectorConfig:
    width: int = option(16, "backbone width w (stage channels 2w, 3w, 4w)", low=4)
    fpn: bool = option(False, "read FPN maps (top-down + lateral) instead of the last backbone map")
    trident: bool = option(False, "TridentNet branches on the last stage: dilations 1/2/3, shared weights, scale-aware training")
    score_threshold: float = option(0.01, "drop detections scoring below this", low=0.0, high=1.0)
    nms_iou: float = option(0.5, "NMS IoU threshold (where the detector uses NMS)", low=0.0, high=1.0)
    max_dets: int = option(100, "detections kept per image", low=1)
    test_scales: list[float] = option([1.0], "image-pyramid scales at test time (e.g. 1 1.5 2)")
    pyramid_max_size: float = option(0.0, "image pyramid: scales above 1 keep only boxes up to this sqrt(area) in original pixels (0: keep all)", low=0.0)


class Detector(Method):
    datasets = DETECTION_DATASETS
    fpn_levels: tuple[int, ...] = (2,)  # which of P2, P3, P4 the head reads with --fpn
    uses_nms = True  # CenterNet: False (peaks are extracted without NMS)
    defaults = {"data": {"name": "scenes"},
                "train": {"steps": 2000, "batch_size": 32, "lr": 2e-3, "warmup": 100, "ema_decay": 0.998,
                          "ckpt_every": 1000, "weight_decay": 1e-4}}

    def __init__(self, cfg, info):
        super().__init__(cfg, info)
        if info.kind != "scene":
            raise UserError(f"{type(self).__name__} needs detection data (e.g. --data scenes or --data coco), got '{info.kind}' data")
        if cfg.fpn and cfg.trident:
            raise UserError("--model-fpn and --model-trident are separate necks here; choose one")
        self.num_classes = info.num_classes
        self.backbone = Backbone(info.shape[0], cfg.width)
        self.channels = 2 * cfg.width  # what every head reads: FPN's width, or C4 reduced by a 1x1 conv
        if cfg.fpn:
            self.fpn = FPN(list(self.backbone.channels), self.channels)
        else:
            self.reduce = nn.Conv2d(self.backbone.channels[-1], self.channels, 1)
        self.n_maps = len(self.fpn_levels) if cfg.fpn else (3 if cfg.trident else 1)

    # --- features ---------------------------------------------------------------------------------

    def levels(self, x: torch.Tensor) -> list[Level]:
        if self.cfg.trident:
            _, _, c4s = self.backbone(x, TRIDENT_DILATIONS)
            return [Level(self.reduce(f), 16, k, r) for k, (f, r) in enumerate(zip(c4s, TRIDENT_RANGES))]
        c2, c3, (c4,) = self.backbone(x)
        if self.cfg.fpn:
            ps = self.fpn([c2, c3, c4])
            return [Level(ps[i], self.backbone.strides[i], k) for k, i in enumerate(self.fpn_levels)]
        return [Level(self.reduce(c4), 16, 0)]

    # --- training ---------------------------------------------------------------------------------

    @staticmethod
    def targets(batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(boxes (N, M, 4), labels (N, M)); padding and crowd objects get label -1."""
        labels = batch["labels"].clone()
        if "crowd" in batch:
            labels[batch["crowd"]] = -1
        return batch["boxes"].float(), labels

    @staticmethod
    def in_range(boxes: torch.Tensor, labels: torch.Tensor, size_range) -> torch.Tensor:
        """Labels with objects outside a trident branch's sqrt(area) range set to -1."""
        if size_range is None:
            return labels
        s = box_area(boxes).sqrt()
        return torch.where((s >= size_range[0]) & (s <= size_range[1]), labels, -1)

    def loss(self, batch):
        boxes, labels = self.targets(batch)
        return self.compute_loss(self.levels(batch["x"]), boxes, labels)

    def compute_loss(self, levels: list[Level], boxes, labels) -> dict:
        """Default: the sum of each map's loss on the objects of its range."""
        total: dict[str, torch.Tensor] = {}
        for lv in levels:
            out = self.level_loss(self.head(lv.feat, lv), lv, boxes, self.in_range(boxes, labels, lv.size_range))
            for k, v in out.items():
                total[k] = total.get(k, 0) + v
        return total

    # --- inference --------------------------------------------------------------------------------

    @torch.no_grad()
    def detect_once(self, x: torch.Tensor) -> list[dict]:
        """One scale: per-image dict(boxes, scores, labels)."""
        per_level = []
        for lv in self.levels(x):
            dets = self.decode(self.head(lv.feat, lv), lv)
            if lv.size_range is not None:
                dets = [self._keep(d, _in_band(d["boxes"], lv.size_range)) for d in dets]
            per_level.append(dets)
        out = []
        for i in range(len(x)):
            d = {k: torch.cat([p[i][k] for p in per_level]) for k in ("boxes", "scores", "labels")}
            d = self._keep(d, d["scores"] >= self.cfg.score_threshold)
            if self.uses_nms or len(per_level) > 1:
                d = self._keep(d, batched_nms(d["boxes"], d["scores"], d["labels"], self.cfg.nms_iou))
            order = torch.sort(d["scores"], descending=True, stable=True).indices[: self.cfg.max_dets]
            d = self._keep(d, order)
            d["boxes"] = d["boxes"].clamp(0, max(x.shape[-2:]))
            out.append(d)
        return out

    @staticmethod
    def _keep(d: dict, idx) -> dict:
        return {k: v[idx] for k, v in d.items()}

    @torch.no_grad()
    def detect(self, images: torch.Tensor, scales: list[float] | None = None,
               pyramid_max_size: float | None = None) -> list[dict]:
        """Detections for images (N, C, H, W) in [-1, 1], optionally with an image pyramid; on the model's
        device (the trainer's pictures hand it test images from the CPU)."""
        images = images.to(self.device)
        was = self.training
        self.eval()
        limit = self.cfg.pyramid_max_size if pyramid_max_size is None else pyramid_max_size
        try:
            return pyramid_detect(self.detect_once, images, list(scales or self.cfg.test_scales), 16,
                                  self.cfg.nms_iou, self.cfg.max_dets, limit)
        finally:
            self.train(was)

    evaluate_writes_pictures = True  # eval writes RUN/eval/coco_results.json

    @dataclass
    class SampleConfig:
        """A detector "samples" detections: drawn on test images (sample) or scored on them (eval)."""
        scales: list[float] = option([], "image-pyramid test scales, e.g. 1 1.5 2 (default: the run's)")
        start: int = option(0, "sample: first test image to draw on", low=0)

    def _scales(self, opts) -> list[float] | None:
        opts = check_type(opts, self.SampleConfig)
        if opts.scales and min(opts.scales) <= 0:
            raise UserError(f"--scales must be positive, got {opts.scales}")
        return list(opts.scales) or None

    def evaluate(self, dataset, n: int, generator=None, opts=None, folder: Path | None = None,
                 pyramid_max_size: float | None = None) -> dict:
        """COCO mAP on the first n test images (deterministic: `generator` is not needed); with `folder`,
        the detections also go to folder/coco_results.json in COCO results format (original image
        coordinates, the file's ids).

        COCO files keep each image's scale s and original size: detections are clipped to the image (not
        the padding) and, like the ground truth's `area`, measured in original pixels for the size bands."""
        from deepatlas.vision.coco_results import coco_results, write_results

        scales = self._scales(opts)
        test = dataset.test
        n = min(n, len(test))
        dets, truths, found, ids, scales_of = [], [], [], [], []
        for start in range(0, n, 50):
            idx = torch.arange(start, min(n, start + 50))
            batch = test.get(idx)
            crowd = batch.get("crowd", torch.zeros_like(batch["labels"], dtype=torch.bool))
            for j, d in enumerate(self.detect(batch["x"], scales, pyramid_max_size)):
                d = {k: v.cpu() for k, v in d.items()}
                s = float(batch["scale"][j]) if "scale" in batch else 1.0
                if "size" in batch:  # the letterboxed image covers [0, s w] x [0, s h] of the canvas
                    w, h = (s * batch["size"][j].double()).tolist()
                    d["boxes"] = torch.stack([d["boxes"][:, 0].clamp(0, w), d["boxes"][:, 1].clamp(0, h),
                                              d["boxes"][:, 2].clamp(0, w), d["boxes"][:, 3].clamp(0, h)], 1)
                boxes = d["boxes"].double()
                dets.append(ImageDetections(boxes.numpy(), d["scores"].double().numpy(), d["labels"].numpy(),
                                            (box_area(boxes) / s ** 2).numpy()))
                keep = batch["labels"][j] >= 0
                area = batch["area"][j][keep].double().numpy() if "area" in batch else None
                truths.append(ImageTruth(batch["boxes"][j][keep].double().numpy(), batch["labels"][j][keep].numpy(),
                                         crowd[j][keep].numpy(), area))
                found.append(d)
                ids.append(int(batch["image_id"][j]) if "image_id" in batch else start + j + 1)
                scales_of.append(s)
        bands = tuple(self.info.extra.get("area_bands", (32.0 ** 2, 96.0 ** 2)))
        result = coco_map(dets, truths, self.num_classes, bands)
        out = {**{k: round(v, 4) for k, v in result.items()}, "images": n, "scales": list(scales or self.cfg.test_scales)}
        if folder is not None:
            results = coco_results(found, ids, scales_of, self.info.extra.get("category_ids"))
            out["coco_results"] = str(write_results(Path(folder) / "coco_results.json", results))
        return out

    # --- pictures ---------------------------------------------------------------------------------

    def _draw(self, path: Path, n: int, start: int = 0, scales=None) -> Path:
        from deepatlas.vision.draw import save_detections

        test = self.info.extra.get("test_split")
        if test is None:
            raise UserError("this dataset keeps no test images to draw on")
        idx = torch.arange(start, min(len(test), start + n))
        batch = test.get(idx)
        dets = self.detect(batch["x"], scales)
        truths = [{"boxes": b, "labels": l} for b, l in zip(batch["boxes"], batch["labels"])]
        return save_detections(batch["x"], dets, self.info.extra.get("classes", []), path, truths)

    def write_samples(self, folder: Path, step: int) -> list[Path]:
        return [self._draw(Path(folder) / f"detections_{step:06d}.png", 9)]

    def sample(self, n: int, generator=None, opts=None) -> dict:
        """Detections on n test images from opts.start: {'images', 'detections'} (deterministic)."""
        test = self.info.extra.get("test_split")
        if test is None:
            raise UserError("this dataset keeps no test images to draw on")
        start = check_type(opts, self.SampleConfig).start
        if start >= len(test):
            raise UserError(f"--start {start} is past the {len(test)} test images")
        batch = test.get(torch.arange(start, min(len(test), start + n)))
        return {"start": start, "batch": batch, "detections": self.detect(batch["x"], self._scales(opts))}

    def sample_files(self, n: int, generator, opts, out: Path) -> tuple[dict, list[Path]]:
        """`deepatlas sample RUN`: detections drawn on up to 36 test images."""
        from deepatlas.vision.draw import save_detections

        s = self.sample(min(n, 36), generator, opts)
        b = s["batch"]
        truths = [{"boxes": bx, "labels": lb} for bx, lb in zip(b["boxes"], b["labels"])]
        return s, [save_detections(b["x"], s["detections"], self.info.extra.get("classes", []), Path(out), truths)]

    def raw_samples(self, samples: dict) -> dict:
        """Every detection as a row: image index (from --start), box x1 y1 x2 y2 in pixels, score, label."""
        import numpy as np

        start = samples["start"]
        rows = [(i, d) for i, d in enumerate(samples["detections"])]
        image = np.concatenate([np.full(len(d["scores"]), i, np.int64) for i, d in rows]) if rows else np.zeros(0, np.int64)
        cat = lambda k, dt: np.concatenate([d[k].detach().cpu().numpy().astype(dt) for _, d in rows])  # noqa: E731
        return {"image": image + start, "boxes": cat("boxes", np.float32).reshape(-1, 4),
                "scores": cat("scores", np.float32), "labels": cat("labels", np.int64)}


def _in_band(boxes: torch.Tensor, size_range) -> torch.Tensor:
    s = box_area(boxes).sqrt()
    return (s >= size_range[0]) & (s <= size_range[1])
