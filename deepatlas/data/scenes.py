"""Detection scenes: objects pasted at many scales on a small grey canvas, with occlusion and clutter.

Objects are drawn shapes (circle, square, triangle), scikit-learn digits and Fashion-MNIST items
(when the IDX files are installed). Each object's box is the exact rectangle its pixels were pasted
into (glyphs are cropped to their ink first), so the boxes are exact.

Size bands. COCO calls an object small below 32² pixels of area and large above 96², on images of
about 512-640 pixels. We scale these thresholds by canvas/512: on the default 96-pixel canvas,
small < 6² = 36 px², medium 36..324 px², large > 18² = 324 px². Objects are drawn with a band chosen
uniformly, then sqrt(area) log-uniform inside it: small 3.5-6, medium 6-18, large 18-40 pixels, with
an aspect ratio in [0.7, 1.4] — so each band holds about a third of the objects.

Occlusion: a new object may overlap earlier ones (IoU up to 0.4, covering at most 60% of the smaller
one); later objects are painted over earlier ones. Clutter: a random background level, pixel noise,
and unlabelled faint strokes and blobs.

Variants (--data-variant): mixed (default; classes circle, square, triangle, digit, clothing),
shapes (3 classes), digits (10 classes), fashion (10 classes).
Splits: train scenes use the digit / clothing items of their datasets' train split, test scenes those
of the test split. A split is a TensorData with x (N, 1, H, W) in [-1, 1], boxes (N, M, 4) xyxy in
pixels and labels (N, M) (-1 pads the M object slots).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.errors import UserError
from deepatlas.registry import register_command, register_dataset

CANVAS = 96
MAX_OBJECTS = 8
SHAPES = ("circle", "square", "triangle")
SIZE_BANDS = ((3.5, 6.0), (6.0, 18.0), (18.0, 40.0))  # sqrt(area) ranges drawn from, pixels


def area_bands(canvas: int = CANVAS) -> tuple[float, float]:
    """COCO's (32², 96²) area thresholds scaled by canvas/512."""
    s = canvas / 512
    return ((32 * s) ** 2, (96 * s) ** 2)


def _glyph_pool(source: str, split: str) -> list[np.ndarray]:
    """Grey glyphs in [0, 1], cropped to their ink."""
    if source == "digit":
        from deepatlas.data.base import split as fixed_split
        from deepatlas.data.digits import load_arrays

        x, _ = load_arrays()
        tr, te = fixed_split(len(x), 0.2, seed=0)
        imgs = ((x[tr if split == "train" else te, 0] + 1) / 2).numpy()
    else:
        from deepatlas.data.fashion_mnist import DEFAULT, load_split

        x, _ = load_split(DEFAULT, split)
        imgs = ((x[:3000, 0] + 1) / 2).numpy()
    out = []
    for im in imgs:
        ys, xs = np.nonzero(im > 0.1)
        if len(ys):
            out.append(im[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])
    return out


def _labelled_pools(source: str, split: str) -> list[list[np.ndarray]]:
    """For variants with one class per digit / clothing label: glyphs grouped by label."""
    if source == "digits":
        from deepatlas.data.base import split as fixed_split
        from deepatlas.data.digits import load_arrays

        x, y = load_arrays()
        tr, te = fixed_split(len(x), 0.2, seed=0)
        idx = tr if split == "train" else te
        x, y = x[idx], y[idx]
    else:
        from deepatlas.data.fashion_mnist import DEFAULT, load_split

        x, y = load_split(DEFAULT, split)
        x, y = x[:5000], y[:5000]
    pools: list[list[np.ndarray]] = [[] for _ in range(10)]
    for im, label in zip(((x[:, 0] + 1) / 2).numpy(), y.tolist()):
        ys, xs = np.nonzero(im > 0.1)
        if len(ys):
            pools[label].append(im[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])
    return pools


def _fashion_available() -> bool:
    from deepatlas.data.fashion_mnist import DEFAULT

    return (DEFAULT / "t10k-images-idx3-ubyte.gz").exists() or (DEFAULT / "t10k-images-idx3-ubyte").exists()


def _draw_shape(kind: str, w: int, h: int) -> np.ndarray:
    """An anti-aliased filled shape exactly filling a w x h box, alpha in [0, 1]."""
    k = 4
    im = Image.new("L", (w * k, h * k), 0)
    d = ImageDraw.Draw(im)
    if kind == "circle":
        d.ellipse([0, 0, w * k - 1, h * k - 1], fill=255)
    elif kind == "square":
        d.rectangle([0, 0, w * k - 1, h * k - 1], fill=255)
    else:
        d.polygon([(w * k / 2, 0), (w * k - 1, h * k - 1), (0, h * k - 1)], fill=255)
    return np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255


def _resize(glyph: np.ndarray, w: int, h: int) -> np.ndarray:
    im = Image.fromarray((glyph * 255).astype(np.uint8))
    return np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255


def _overlap_ok(box, boxes) -> bool:
    for b in boxes:
        iw = max(0, min(box[2], b[2]) - max(box[0], b[0]))
        ih = max(0, min(box[3], b[3]) - max(box[1], b[1]))
        inter = iw * ih
        a1, a2 = (box[2] - box[0]) * (box[3] - box[1]), (b[2] - b[0]) * (b[3] - b[1])
        if inter / (a1 + a2 - inter) > 0.4 or inter / min(a1, a2) > 0.6:
            return False
    return True


def _clutter(canvas: np.ndarray, rng: np.random.Generator) -> None:
    size = canvas.shape[0]
    im = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(im)
    for _ in range(rng.integers(0, 5)):
        pts = rng.uniform(0, size, 4)
        d.line(list(pts), fill=int(rng.uniform(60, 140)), width=1)
    for _ in range(rng.integers(0, 3)):
        cx, cy, r = *rng.uniform(0, size, 2), rng.uniform(1, 3)
        d.ellipse([cx - r, cy - r * rng.uniform(0.3, 1), cx + r, cy + r], fill=int(rng.uniform(40, 110)))
    canvas[:] = np.maximum(canvas, np.asarray(im, dtype=np.float32) / 255)


def generate(n: int, variant: str, split: str, seed: int, canvas: int = CANVAS):
    """n scenes -> (x (n,1,S,S) in [-1,1], boxes (n,M,4), labels (n,M), class names)."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    if variant in ("", "mixed"):
        classes = list(SHAPES) + ["digit"] + (["clothing"] if _fashion_available() else [])
        pools = {3: _glyph_pool("digit", split)}
        if "clothing" in classes:
            pools[4] = _glyph_pool("clothing", split)
    elif variant == "shapes":
        classes, pools = list(SHAPES), {}
    elif variant in ("digits", "fashion"):
        if variant == "fashion" and not _fashion_available():
            raise UserError("scenes variant 'fashion' needs Fashion-MNIST; install it with "
                            "`apt-get install dataset-fashion-mnist`, or use --data-variant mixed|shapes|digits")
        by_label = _labelled_pools(variant, split)
        classes = [str(i) for i in range(10)] if variant == "digits" else \
            list(__import__("deepatlas.data.fashion_mnist", fromlist=["CLASSES"]).CLASSES)
        pools = dict(enumerate(by_label))
    else:
        raise UserError(f"unknown scenes variant '{variant}'; choose mixed, shapes, digits or fashion")

    x = np.zeros((n, canvas, canvas), np.float32)
    boxes = np.zeros((n, MAX_OBJECTS, 4), np.float32)
    labels = np.full((n, MAX_OBJECTS), -1, np.int64)
    for i in range(n):
        img = x[i]
        img += rng.uniform(0, 0.15)
        _clutter(img, rng)
        placed = []
        for _ in range(int(rng.integers(1, 7))):
            lo, hi = SIZE_BANDS[rng.integers(0, 3)]
            s = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            a = math.exp(rng.uniform(math.log(0.7), math.log(1.4)))
            w, h = max(2, round(s * math.sqrt(a))), max(2, round(s / math.sqrt(a)))
            c = int(rng.integers(0, len(classes)))
            for _try in range(20):
                x0, y0 = int(rng.integers(0, canvas - w + 1)), int(rng.integers(0, canvas - h + 1))
                box = (x0, y0, x0 + w, y0 + h)
                if _overlap_ok(box, [p[0] for p in placed]):
                    break
            else:
                continue
            if c in pools:
                pool = pools[c]
                alpha = _resize(pool[rng.integers(0, len(pool))], w, h)
            else:
                alpha = _draw_shape(classes[c], w, h)
            intensity = rng.uniform(0.55, 1.0)
            region = img[y0:y0 + h, x0:x0 + w]
            region[:] = region * (1 - alpha) + intensity * alpha
            placed.append((box, c))
        for k, (box, c) in enumerate(placed):
            boxes[i, k], labels[i, k] = box, c
    x += rng.normal(0, 0.04, x.shape).astype(np.float32)
    x = np.clip(x, 0, 1) * 2 - 1
    return torch.from_numpy(x)[:, None], torch.from_numpy(boxes), torch.from_numpy(labels), classes


@register_dataset("scenes", "data", "detection scenes: shapes/digits/clothing at COCO-like size bands on a 96 px canvas (--variant mixed|shapes|digits|fashion)",
                  fields=("variant", "size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    n_train = cfg.size or 4000
    xtr, btr, ltr, classes = generate(n_train, cfg.variant, "train", cfg.seed)
    xte, bte, lte, _ = generate(500, cfg.variant, "test", cfg.seed)
    info = DataInfo("scene", tuple(xtr.shape[1:]), len(classes),
                    {"classes": classes, "area_bands": area_bands(CANVAS), "max_objects": MAX_OBJECTS})
    test = TensorData(x=xte, boxes=bte, labels=lte)
    info.extra["test_split"] = test  # images to draw detections on
    return Dataset("scenes", info, TensorData(x=xtr, boxes=btr, labels=ltr), test)


@register_command(
    "make-scenes", "data", "write generated detection scenes as COCO JSON + PNG images (train.json, test.json, images/)")
def _make_scenes_command(parser):
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument("--variant", default="mixed", help="mixed | shapes | digits | fashion (default: mixed)")
    parser.add_argument("--size", type=int, default=1000, help="train scenes (default: 1000; test: 500)")
    parser.add_argument("--seed", type=int, default=0)

    def run(args) -> int:
        from deepatlas.data.coco import write_coco

        d = load(DataConfig(name="scenes", variant=args.variant, size=args.size, seed=args.seed))
        for name, split in (("train", d.train), ("test", d.test)):
            print(f"wrote {write_coco(split, d.info.extra['classes'], args.out, name)}")
        return 0
    return run
