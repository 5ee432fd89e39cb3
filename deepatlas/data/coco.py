"""COCO-format detection data: write any scenes split as COCO JSON + PNG images, and load any
COCO-format JSON (with its images folder) into the same tensors the detectors train on.

Loading: `--data-path` is either a JSON file (its images split 80/20 into train/test by a fixed seed)
or a folder holding train.json and test.json (what `deepatlas make-scenes` writes). Image files are
looked up relative to the JSON's folder, then in an `images/` folder beside it. Every image is
letterboxed to a square canvas of `--data-resolution` pixels (default 96; a multiple of 16, the
detectors' coarsest stride): the longest side scaled by s = canvas / max(width, height), top-left
aligned, the rest padded with -1; its boxes are scaled by the same s. Categories become labels 0..K-1 in
increasing category id. Crowd annotations are kept with `crowd` = True (evaluation ignores them, as
COCO does; training skips them).

Grey and colour files in one dataset (both splits together) become one channel count: RGB if any image
is colour, else grey, or `--data-channels` (data/image_files.py says how each mode is read).

For evaluation each image also keeps `image_id`, its scale `scale` (s) and original `size` (w, h), and each
object its `area` in ORIGINAL pixels (the annotation's `area`, else bbox w*h): the COCO size bands
small < 32² <= medium <= 96² < large are taken on these, exactly as pycocotools does, whatever the canvas.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.data.image_files import letterbox, open_image, peek_colour, to_tensor
from deepatlas.errors import UserError
from deepatlas.registry import register_dataset

CANVAS = 96
COCO_BANDS = (32.0 ** 2, 96.0 ** 2)  # small / medium / large, on areas in original pixels


def write_coco(split: TensorData, classes: list[str], folder: str | Path, name: str) -> Path:
    """Write split (x, boxes, labels) as folder/name.json + folder/images/name_000000.png."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    x, boxes, labels = split["x"], split["boxes"], split["labels"]
    for i in range(len(x)):
        arr = ((x[i].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
        fname = f"images/{name}_{i:06d}.png"
        Image.fromarray(arr).save(folder / fname)
        images.append({"id": i + 1, "file_name": fname, "width": arr.shape[1], "height": arr.shape[0]})
        for b, c in zip(boxes[i].tolist(), labels[i].tolist()):
            if c >= 0:
                w, h = b[2] - b[0], b[3] - b[1]
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c + 1,
                             "bbox": [b[0], b[1], w, h], "area": w * h, "iscrowd": 0})
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(classes)]
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise UserError(f"COCO annotation file not found: {path}; pass --data-path to a COCO JSON file or a folder with train.json and test.json")
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e}); expected a COCO annotation file") from None
    if not isinstance(d, dict) or not all(isinstance(d.get(k), list) for k in ("images", "annotations", "categories")):
        raise UserError(f"{path}: not a COCO annotation file (needs lists 'images", "annotations' and 'categories')")
    return d


def _find_image(path: Path, fname: str) -> Path:
    for cand in (path.parent / fname, path.parent / "images" / fname, path.parent / "images" / Path(fname).name):
        if cand.is_file():
            return cand
    raise UserError(f"{path}: image '{fname}' not found next to the JSON or in an images/ folder beside it")


def _open_image(path: Path, fname: str) -> Image.Image:
    return open_image(_find_image(path, fname))


def _int_id(entry, key: str, what: str, path: Path) -> int:
    v = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(v, int) or isinstance(v, bool):
        raise UserError(f"{path}: {what} has {key} {v!r}; COCO ids are integers")
    return v


def _entries(d: dict, path: Path):
    """Check the fields read_coco uses -> (categories [(id, name)], images [(id, file)], annotations
    [(image_id, category_id, (x, y, w, h), crowd)]), each malformed entry named in a one-line error."""
    cats = [(_int_id(c, "id", f"category {k}", path), c.get("name")) for k, c in enumerate(d["categories"])]
    images = []
    for k, im in enumerate(d["images"]):
        iid = _int_id(im, "id", f"image {k}", path)
        if not isinstance(im.get("file_name"), str) or not im["file_name"]:
            raise UserError(f"{path}: image {iid} has no 'file_name' string")
        images.append((iid, im["file_name"]))
    for what, ids in (("category", [c for c, _ in cats]), ("image", [i for i, _ in images])):
        if len(set(ids)) != len(ids):
            raise UserError(f"{path}: two {what} entries share an id")
    anns = []
    for k, a in enumerate(d["annotations"]):
        iid, cid = _int_id(a, "image_id", f"annotation {k}", path), _int_id(a, "category_id", f"annotation {k}", path)
        box = a.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                  and np.isfinite(v) for v in box)):
            raise UserError(f"{path}: annotation {a.get('id', k)} has bbox {box!r}; expected [x, y, width, height] of finite numbers")
        if box[2] < 0 or box[3] < 0:
            raise UserError(f"{path}: annotation {a.get('id', k)} has a negative width or height in bbox {box}")
        area = a.get("area")
        area = float(area) if isinstance(area, (int, float)) and not isinstance(area, bool) and np.isfinite(area) \
            and area >= 0 else float(box[2]) * float(box[3])
        anns.append((iid, cid, tuple(float(v) for v in box), bool(a.get("iscrowd", 0)), area))
    return cats, images, anns


def _files(path: Path, images, image_ids) -> list[tuple[int, str]]:
    files = [(iid, f) for iid, f in images if image_ids is None or iid in image_ids]
    if not files:
        raise UserError(f"{path}: no images to load; a COCO file needs at least one entry in 'images'")
    return files


def any_colour(path: Path, files) -> bool:
    """Whether any image of a split is colour (read from the file headers)."""
    return any(peek_colour(_find_image(path, f)) for _, f in files)


def read_coco(path: str | Path, canvas: int = CANVAS, cat_ids: list[int] | None = None, image_ids=None, entries=None,
              channels: int = 0):
    """-> (TensorData with x, boxes, labels, crowd, area, image_id, scale, size; class names; category ids).
    `entries`: the file's checked `_entries`, when the caller has parsed it already (one file split into
    train and test); `channels`: 1 or 3 (0: RGB if any image of this split is colour)."""
    path = Path(path)
    cats, images, anns = entries or _entries(_read_json(path), path)
    cats = sorted(cats)
    cat_ids = cat_ids or [c for c, _ in cats]
    names = [str(name if name is not None else cid) for cid, name in cats]
    index = {cid: k for k, cid in enumerate(cat_ids)}
    files = _files(path, images, image_ids)
    by_image: dict = {iid: [] for iid, _ in files}
    for iid, cid, box, crowd, area in anns:
        if iid in by_image:
            if cid not in index:
                raise UserError(f"{path}: an annotation of image {iid} has unknown category_id {cid}")
            by_image[iid].append((cid, box, crowd, area))
    c = channels or (3 if any_colour(path, files) else 1)
    n, m = len(files), max([len(v) for v in by_image.values()] + [1])
    x = torch.empty(n, c, canvas, canvas)
    boxes, labels = torch.zeros(n, m, 4), torch.full((n, m), -1, dtype=torch.long)
    crowd, area = torch.zeros(n, m, dtype=torch.bool), torch.zeros(n, m, dtype=torch.float64)
    scale, size = torch.zeros(n, dtype=torch.float64), torch.zeros(n, 2, dtype=torch.long)
    for i, (iid, fname) in enumerate(files):
        pic = _open_image(path, fname)
        on_canvas, s = letterbox(to_tensor(pic, c), canvas, fill=0.0)
        x[i] = on_canvas * 2 - 1  # (C, canvas, canvas) in [-1, 1], padding -1
        scale[i], size[i] = s, torch.tensor(pic.size)
        for k, (cid, (bx, by, bw, bh), is_crowd, a) in enumerate(by_image[iid]):
            boxes[i, k] = torch.tensor([bx, by, bx + bw, by + bh]) * s
            labels[i, k], crowd[i, k], area[i, k] = index[cid], is_crowd, a
    if not torch.isfinite(boxes).all():
        raise UserError(f"{path}: a bbox is too large to represent (values beyond float32)")
    ids = torch.tensor([iid for iid, _ in files], dtype=torch.long)
    return (TensorData(x=x, boxes=boxes, labels=labels, crowd=crowd, area=area, image_id=ids, scale=scale, size=size),
            names, cat_ids)


@register_dataset("coco", "data", "any COCO-format detection JSON + images (--path FILE.json, or a folder with train.json/test.json)",
                  fields=("path", "size", "seed", "resolution", "channels"))
def load(cfg: DataConfig) -> Dataset:
    if not cfg.path:
        raise UserError("dataset 'coco' needs --data-path: a COCO JSON file, or a folder with train.json and test.json")
    path = Path(cfg.path)
    canvas = cfg.resolution or CANVAS
    if canvas % 16 or canvas < 32:
        raise UserError(f"--data-resolution {canvas}: the coco canvas must be a multiple of 16 (the detectors' "
                        "coarsest stride) and at least 32, e.g. 96, 128 or 256")
    if path.is_dir():
        splits = [(p, None, _entries(_read_json(p), p)) for p in (path / "train.json", path / "test.json")]
    else:
        entries = _entries(_read_json(path), path)  # parsed once, read for both splits
        all_ids = sorted(iid for iid, _ in entries[1])
        if len(all_ids) < 2:
            raise UserError(f"{path}: {len(all_ids)} image(s); a single COCO file is split 80/20 into train and "
                            "test, so it needs at least 2 (or pass a folder with train.json and test.json)")
        perm = torch.randperm(len(all_ids), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        n_test = max(1, round(0.2 * len(all_ids)))
        test_ids = {all_ids[j] for j in perm[:n_test]}
        splits = [(path, set(all_ids) - test_ids, entries), (path, test_ids, entries)]
    # one channel count for both splits: a grey train split and a colour test split must not differ
    channels = cfg.channels or (3 if any(any_colour(p, _files(p, e[1], ids)) for p, ids, e in splits) else 1)
    (p, ids_tr, e_tr), (q, ids_te, e_te) = splits
    train, names, ids = read_coco(p, canvas, image_ids=ids_tr, entries=e_tr, channels=channels)
    test, _, _ = read_coco(q, canvas, cat_ids=ids, image_ids=ids_te, entries=e_te, channels=channels)
    if cfg.size:
        train = TensorData(**{k: v[: cfg.size] for k, v in train.tensors.items()})
    m = max(train["labels"].shape[1], test["labels"].shape[1])
    train, test = (_pad(t, m) for t in (train, test))
    info = DataInfo("scene", tuple(train["x"].shape[1:]), len(names),
                    {"classes": names, "area_bands": COCO_BANDS, "max_objects": m, "test_split": test,
                     "category_ids": list(ids)})
    return Dataset("coco", info, train, test)


def _pad(t: TensorData, m: int) -> TensorData:
    k = t["labels"].shape[1]
    if k == m:
        return t
    pad = lambda v, fill: torch.cat([v, torch.full((len(v), m - k, *v.shape[2:]), fill, dtype=v.dtype)], 1)
    per_object = {"boxes": 0, "labels": -1, "crowd": False, "area": 0}
    return TensorData(**{key: pad(v, per_object[key]) if key in per_object else v for key, v in t.tensors.items()})
