"""`deepatlas predict RUN IMAGE...`: a trained detector on your own picture files.

Each file (any size, grey or colour, PNG or JPEG) is read as the run's training data were (data/
image_files.py: one channel count, the run's), letterboxed onto the run's square canvas (longest side
scaled by s = canvas / max(w, h), top-left, padded), detected, and its boxes taken back to the file's
pixels (divided by s, clipped to the picture). Written to --out (default RUN/predict/):
- NAME.png: the picture with the boxes of score >= --min-score, class names and scores, and a legend;
- predictions.json: every detection the detector kept, as COCO results
  `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]` in original pixels;
- images.json: the COCO `images` entries those ids refer to (id, file_name, width, height).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from deepatlas.errors import UserError
from deepatlas.registry import register_command


def _detector_run(run: Path) -> None:
    """Refuse a run that is not a detector before loading it (its data may be large)."""
    from deepatlas.registry import get
    from deepatlas.train.run import read_config
    from deepatlas.vision.detector import Detector

    cfg = read_config(run)
    name = cfg.get("method") if isinstance(cfg, dict) else None
    obj = get("method", str(name)).obj
    if not (isinstance(obj, type) and issubclass(obj, Detector)):
        detectors = sorted(e.name for e in _detectors())
        raise UserError(f"{run} holds a '{name}' run, not a detector; predict runs {', '.join(detectors)} runs")


def _detectors():
    from deepatlas.registry import table
    from deepatlas.vision.detector import Detector

    return [e for e in table("method").values() if isinstance(e.obj, type) and issubclass(e.obj, Detector)]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def predict(run: Path, images: list[Path], out: Path | None = None, min_score: float = 0.3, weights: str = "ema",
            scales: list[float] | None = None) -> dict:
    from deepatlas.data.image_files import letterbox, open_image, to_tensor
    from deepatlas.train.atomic import write_bytes_atomic
    from deepatlas.train.run import open_run
    from deepatlas.vision.coco_results import coco_results, write_results
    from deepatlas.vision.draw import draw, with_legend

    if not 0 <= min_score <= 1:
        raise UserError(f"--min-score must be in [0, 1], got {min_score}")
    if scales is not None and min(scales) <= 0:
        raise UserError(f"--scales must be positive, got {scales}")
    pictures = [open_image(p) for p in images]  # a missing or unreadable file fails before the run is loaded
    _detector_run(run)
    method, _, _, _ = open_run(run, weights)
    c, canvas = method.info.shape[0], method.info.shape[-1]
    classes = list(method.info.extra.get("classes", []))
    originals = [to_tensor(p, c) for p in pictures]  # (C, H, W) in [0, 1]
    boxed = [letterbox(t, canvas, fill=0.0) for t in originals]
    x = torch.stack([b for b, _ in boxed]) * 2 - 1  # (N, C, canvas, canvas) in [-1, 1]
    dets = [{k: v.cpu() for k, v in d.items()} for d in method.detect(x, scales)]
    out = Path(out) if out is not None else Path(run) / "predict"
    out.mkdir(parents=True, exist_ok=True)
    written, entries, scales_of = [], [], []
    for i, (path, t, (_, s), d) in enumerate(zip(images, originals, boxed, dets)):
        h, w = t.shape[-2:]
        b = d["boxes"].double()
        d["boxes"] = torch.stack([b[:, 0].clamp(0, s * w), b[:, 1].clamp(0, s * h),
                                  b[:, 2].clamp(0, s * w), b[:, 3].clamp(0, s * h)], 1)
        scales_of.append(s)
        entries.append({"id": i + 1, "file_name": str(path), "width": int(w), "height": int(h)})
    for name, t, (_, s), d in zip(_unique([p.stem for p in images]), originals, boxed, dets):
        zoom = max(1, math.ceil(256 / max(t.shape[-2:])))  # small pictures are drawn larger, to be readable
        mapped = {**d, "boxes": d["boxes"] / s}
        im = draw(t * 2 - 1, mapped, classes, scale=zoom, min_score=min_score)
        shown = [int(c) for c, sc in zip(d["labels"].tolist(), d["scores"].tolist()) if sc >= min_score]
        png = out / f"{name}.png"
        with_legend(im, classes, shown, "" if shown else f"no detections with score >= {min_score}").save(png)
        written.append((png, len(shown)))
    results = coco_results(dets, [e["id"] for e in entries], scales_of, method.info.extra.get("category_ids"))
    json_path = write_results(out / "predictions.json", results)
    write_bytes_atomic(out / "images.json", json.dumps(entries, indent=1).encode())
    return {"pictures": written, "predictions": json_path, "detections": len(results)}


@register_command("predict", "vision", "run a trained detector on your own image files: deepatlas predict RUN IMAGE... "
                                       "(PNGs with the boxes drawn + COCO results JSON)")
def configure(parser):
    parser.add_argument("run", type=Path, help="run directory of a detector (fcos, centernet, yolov1)")
    parser.add_argument("images", type=Path, nargs="+", help="PNG or JPEG files, any size, grey or colour")
    parser.add_argument("--out", type=Path, default=None, help="folder to write (default: RUN/predict)")
    parser.add_argument("--min-score", type=float, default=0.3,
                        help="draw detections scoring at least this (predictions.json keeps every one; default: 0.3)")
    parser.add_argument("--weights", choices=("ema", "raw"), default="ema", help="EMA or raw weights (default: ema)")
    parser.add_argument("--scales", type=float, nargs="+", default=None, help="image-pyramid test scales, e.g. 1 1.5 2")

    def run(args) -> int:
        r = predict(args.run, args.images, args.out, args.min_score, args.weights, args.scales)
        for png, k in r["pictures"]:
            print(f"wrote {png} ({k} detections drawn)")
        print(f"wrote {r['predictions']} ({r['detections']} detections, COCO results format)")
        return 0

    return run
