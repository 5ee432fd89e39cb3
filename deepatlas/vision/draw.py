"""Detections drawn on images as a PNG: boxes coloured by class, with class name and score."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw

COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def draw(image: torch.Tensor, dets: dict, classes: list[str], scale: int = 4, truth: dict | None = None,
         min_score: float = 0.3) -> Image.Image:
    """image (C, H, W) in [-1, 1]; dets with boxes/scores/labels; ground truth (boxes, labels) in grey."""
    arr = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = arr.repeat(3, 1, 1) if arr.shape[0] == 1 else arr
    im = Image.fromarray(arr.permute(1, 2, 0).numpy()).resize((image.shape[2] * scale, image.shape[1] * scale),
                                                              Image.NEAREST)
    d = ImageDraw.Draw(im)
    if truth is not None:
        for b, c in zip(truth["boxes"].tolist(), truth["labels"].tolist()):
            if c >= 0:
                d.rectangle([v * scale for v in b], outline=(128, 128, 128))
    for b, s, c in zip(dets["boxes"].tolist(), dets["scores"].tolist(), dets["labels"].tolist()):
        if s < min_score:
            continue
        col = COLOURS[c % len(COLOURS)]
        d.rectangle([v * scale for v in b], outline=col, width=2)
        name = classes[c] if c < len(classes) else str(c)
        d.text((b[0] * scale + 2, b[1] * scale + 1), f"{name} {s:.2f}", fill=col)
    return im


def save_detections(images: torch.Tensor, dets: list[dict], classes: list[str], path: str | Path,
                    truths: list[dict] | None = None, nrow: int | None = None, scale: int = 4) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tiles = [draw(images[i], dets[i], classes, scale, truths[i] if truths else None) for i in range(len(images))]
    nrow = nrow or math.ceil(math.sqrt(len(tiles)))
    w, h = tiles[0].size
    rows = math.ceil(len(tiles) / nrow)
    sheet = Image.new("RGB", (nrow * (w + 2), rows * (h + 2)), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % nrow) * (w + 2), (i // nrow) * (h + 2)))
    sheet.save(path)
    return path


def with_legend(im: Image.Image, classes: list[str], labels: list[int], title: str = "") -> Image.Image:
    """im with a white strip below it: `title`, then one colour swatch + class name (+ count) per class in
    `labels` (the classes drawn), in class order."""
    counts: dict[int, int] = {}
    for c in labels:
        counts[c] = counts.get(c, 0) + 1
    entries = [(c, f"{classes[c] if c < len(classes) else c} x{counts[c]}") for c in sorted(counts)]
    line, per_row = 14, max(1, im.width // 110)
    rows = 1 + math.ceil(len(entries) / per_row)
    out = Image.new("RGB", (max(im.width, 110), im.height + rows * line + 4), (255, 255, 255))
    out.paste(im.convert("RGB"), (0, 0))
    d = ImageDraw.Draw(out)
    y0 = im.height + 2
    d.text((4, y0), title or ("no detections" if not entries else ""), fill=(0, 0, 0))
    for k, (c, text) in enumerate(entries):
        x, y = 4 + (k % per_row) * 110, y0 + line * (1 + k // per_row)
        col = COLOURS[c % len(COLOURS)]
        d.rectangle([x, y + 2, x + 9, y + 11], fill=col)
        d.text((x + 13, y), text, fill=(0, 0, 0))
    return out
