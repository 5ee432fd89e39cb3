"""COCO-format detection data: write any scenes split as COCO JSON + PNG images, and load any
COCO-format JSON (with its images folder) into the same tensors the detectors train on.

Loading: `--data-path` is either a JSON file (its images split 80/20 into train/test by a fixed seed)
or a folder holding train.json and test.json (what `deepatlas make-scenes` writes). Image files are
looked up relative to the JSON's folder, then in an `images/` folder beside it. Every image is
letterboxed to a square 96-pixel canvas ( the longest side scaled
to fit, top-left aligned, the rest padded with -1), its boxes scaled the same way; categories become
labels 0..K-1 in increasing category id. Crowd annotations are kept with `crowd` = True (evaluation
ignores them, as COCO does; training skips them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.errors import UserError
from deepatlas.registry import register_dataset

CANVAS = 96


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
    found = _find_image(path, fname)
    try:
        pic = Image.open(found)
        pic.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"{found}: not a readable image ({e})") from None
    return pic


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
        anns.append((iid, cid, tuple(float(v) for v in box), bool(a.get("iscrowd", 0))))
    return cats, images, anns


def read_coco(path: str | Path, canvas: int = CANVAS, cat_ids: list[int] | None = None, image_ids=None, entries=None):
    """-> (TensorData with x, boxes, labels, crowd; class names; category ids). `entries`: the file's
    checked `_entries`, when the caller has parsed it already (one file split into train and test)."""
    path = Path(path)
    cats, images, anns = entries or _entries(_read_json(path), path)
    cats = sorted(cats)
    cat_ids = cat_ids or [c for c, _ in cats]
    names = [str(name if name is not None else cid) for cid, name in cats]
    index = {cid: k for k, cid in enumerate(cat_ids)}
    files = [(iid, f) for iid, f in images if image_ids is None or iid in image_ids]
    if not files:
        raise UserError(f"{path}: no images to load; a COCO file needs at least one entry in 'images'")
    by_image: dict = {iid: [] for iid, _ in files}
    for iid, cid, box, crowd in anns:
        if iid in by_image:
            if cid not in index:
                raise UserError(f"{path}: an annotation of image {iid} has unknown category_id {cid}")
            by_image[iid].append((cid, box, crowd))
    pictures = [_open_image(path, f) for _, f in files]
    grey = all(p.mode in ("L", "1", "I;16") for p in pictures)
    n, m = len(files), max([len(v) for v in by_image.values()] + [1])
    x = torch.full((n, 1 if grey else 3, canvas, canvas), -1.0)
    boxes, labels = torch.zeros(n, m, 4), torch.full((n, m), -1, dtype=torch.long)
    crowd = torch.zeros(n, m, dtype=torch.bool)
    for i, ((iid, _), pic) in enumerate(zip(files, pictures)):
        pic = pic.convert("L" if grey else "RGB")
        s = canvas / max(pic.size)
        w, h = max(1, round(pic.size[0] * s)), max(1, round(pic.size[1] * s))
        arr = np.asarray(pic.resize((w, h), Image.BILINEAR) if (w, h) != pic.size else pic, dtype=np.float32)
        arr = arr[None] if grey else arr.transpose(2, 0, 1)
        x[i, :, :h, :w] = torch.from_numpy(arr) / 127.5 - 1
        for k, (cid, (bx, by, bw, bh), is_crowd) in enumerate(by_image[iid]):
            boxes[i, k] = torch.tensor([bx, by, bx + bw, by + bh]) * s
            labels[i, k] = index[cid]
            crowd[i, k] = is_crowd
    if not torch.isfinite(boxes).all():
        raise UserError(f"{path}: a bbox is too large to represent (values beyond float32)")
    return TensorData(x=x, boxes=boxes, labels=labels, crowd=crowd), names, cat_ids


@register_dataset("coco", "data", "any COCO-format detection JSON + images (--path FILE.json, or a folder with train.json/test.json)",
                  fields=("path", "size", "seed"))
def load(cfg: DataConfig) -> Dataset:
    if not cfg.path:
        raise UserError("dataset 'coco' needs --data-path: a COCO JSON file, or a folder with train.json and test.json")
    path = Path(cfg.path)
    if path.is_dir():
        train, names, ids = read_coco(path / "train.json")
        test, _, _ = read_coco(path / "test.json", cat_ids=ids)
    else:
        entries = _entries(_read_json(path), path)  # parsed once, read for both splits
        all_ids = sorted(iid for iid, _ in entries[1])
        if len(all_ids) < 2:
            raise UserError(f"{path}: {len(all_ids)} image(s); a single COCO file is split 80/20 into train and "
                            "test, so it needs at least 2 (or pass a folder with train.json and test.json)")
        perm = torch.randperm(len(all_ids), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        n_test = max(1, round(0.2 * len(all_ids)))
        test_ids = {all_ids[j] for j in perm[:n_test]}
        train, names, ids = read_coco(path, image_ids=set(all_ids) - test_ids, entries=entries)
        test, _, _ = read_coco(path, cat_ids=ids, image_ids=test_ids, entries=entries)
    if cfg.size:
        train = TensorData(**{k: v[: cfg.size] for k, v in train.tensors.items()})
    m = max(train["labels"].shape[1], test["labels"].shape[1])
    train, test = (_pad(t, m) for t in (train, test))
    s = CANVAS / 512  # the same scaling of COCO's 32²/96² bands as the generated scenes
    info = DataInfo("scene", tuple(train["x"].shape[1:]), len(names),
                    {"classes": names, "area_bands": ((32 * s) ** 2, (96 * s) ** 2), "max_objects": m, "test_split": test})
    return Dataset("coco", info, train, test)


def _pad(t: TensorData, m: int) -> TensorData:
    k = t["labels"].shape[1]
    if k == m:
        return t
    pad = lambda v, fill: torch.cat([v, torch.full((len(v), m - k, *v.shape[2:]), fill, dtype=v.dtype)], 1)
    return TensorData(x=t["x"], boxes=pad(t["boxes"], 0), labels=pad(t["labels"], -1), crowd=pad(t["crowd"], False))
