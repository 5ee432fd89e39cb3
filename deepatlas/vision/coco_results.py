"""Detections as a COCO results file: `[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`, the
format pycocotools' `COCO.loadRes` and the COCO evaluation server read.

Boxes found on the letterboxed canvas (xyxy, canvas pixels) go back to the original image by the
image's scale s (canvas = s * original): bbox = [x1 / s, y1 / s, (x2 - x1) / s, (y2 - y1) / s]. Labels
0..K-1 go back to the file's category ids (`category_ids[label]`; default label + 1, as `make-scenes`
writes them).
"""

from __future__ import annotations

import json
from pathlib import Path

from deepatlas.train.atomic import write_bytes_atomic


def coco_results(dets: list[dict], image_ids: list[int], scales: list[float] | None = None,
                 category_ids: list[int] | None = None) -> list[dict]:
    """dets: per image dict(boxes (D, 4) xyxy on the canvas, scores (D,), labels (D,))."""
    out = []
    for k, (d, iid) in enumerate(zip(dets, image_ids)):
        s = float(scales[k]) if scales is not None else 1.0
        for b, score, c in zip(d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist()):
            x1, y1, x2, y2 = (v / s for v in b)
            cid = category_ids[c] if category_ids else c + 1
            out.append({"image_id": int(iid), "category_id": int(cid), "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": float(score)})
    return out


def write_results(path: str | Path, results: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, json.dumps(results).encode())
    return path
