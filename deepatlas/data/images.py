"""Your own pictures: any folder of PNG / JPEG files, as an image dataset every image method trains on.

Layout of `--data-path FOLDER`:
- pictures directly in FOLDER: an unlabelled dataset (num_classes 0);
- one subfolder per class (pictures anywhere below it): labels 0..K-1 in the sorted order of the
  subfolder names. Pictures both directly in FOLDER and in subfolders are refused (which would they be?).
Files whose names end in .png, .jpg or .jpeg (any case) are read; other files, and names starting with
a dot, are left alone.

Every picture is decoded (image_files.py), made one channel count for the whole folder (`--data-channels`:
0 = RGB if any picture is colour, else grey), its shorter side resized to `--data-resolution` R (default
32) and the centre R x R kept, then scaled to [-1, 1]. A fixed 80/20 train/test split by `--data-seed`
(data/base.py `split`); `--data-size` keeps the first N training pictures; `--data-binarize` as for digits.

The dataset's name carries a fingerprint of the files (names, sizes, times) and of the options that
change the tensors (resolution, channels, binarize, seed, size): it keys the cached FID classifier, so
two folders never share one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData, binarize, split
from deepatlas.data.image_files import EXTENSIONS, fit_square, open_image, peek_colour, to_tensor
from deepatlas.errors import UserError
from deepatlas.registry import register_dataset

DEFAULT_RESOLUTION = 32
MIN_IMAGES = 5  # so that the 20% test split holds at least one picture
LAYOUT = f"a folder of {', '.join(EXTENSIONS)} files, directly in it or in one subfolder per class"


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _pictures(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in EXTENSIONS
                  and all(_visible(q) for q in p.relative_to(folder).parts))


def scan(folder: str | Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """-> (files, labels or None (flat folder), class names)."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"images folder not found: {folder}; pass --data-path to {LAYOUT}")
    if not folder.is_dir():
        raise UserError(f"{folder} is a file; --data-path for dataset 'images' takes {LAYOUT}")
    top = _pictures(folder, recursive=False)
    classes = {d.name: files for d in sorted(folder.iterdir()) if d.is_dir() and _visible(d.name)
               if (files := _pictures(d, recursive=True))}
    if top and classes:
        raise UserError(f"{folder} holds pictures both directly (e.g. {top[0].name}) and in class subfolders "
                        f"({', '.join(list(classes)[:3])}); put every picture in a class subfolder, or none")
    if top:
        return top, None, []
    if not classes:
        raise UserError(f"{folder}: no images found; deepatlas reads {LAYOUT}")
    names = sorted(classes)
    files = [f for k in names for f in classes[k]]
    labels = [i for i, k in enumerate(names) for _ in classes[k]]
    return files, labels, names


def fingerprint(files: list[Path], folder: Path, *extra) -> str:
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(repr(extra).encode())
    return h.hexdigest()[:10]


def read_images(files: list[Path], resolution: int, channels: int = 0) -> torch.Tensor:
    """(N, C, R, R) in [-1, 1]: every file decoded, one channel count, shorter side to R, centre crop."""
    c = channels or (3 if any(peek_colour(f) for f in files) else 1)  # headers only (palettes decoded)
    x = torch.empty(len(files), c, resolution, resolution)
    for i, f in enumerate(files):
        x[i] = fit_square(to_tensor(open_image(f), c), resolution) * 2 - 1
    return x


@register_dataset("images", "data", "your own pictures: --data-path FOLDER of PNG/JPEG files (one subfolder per class, or flat "
                                    "= unlabelled), resized to --data-resolution (default 32); 80/20 split",
                  fields=("path", "size", "binarize", "seed", "resolution", "channels"))
def load(cfg: DataConfig) -> Dataset:
    if not cfg.path:
        raise UserError(f"dataset 'images' needs --data-path: {LAYOUT}")
    r = cfg.resolution or DEFAULT_RESOLUTION
    if r < 4:
        raise UserError(f"--data-resolution must be at least 4 pixels, got {r}")
    folder = Path(cfg.path)
    files, labels, names = scan(folder)
    if len(files) < MIN_IMAGES:
        raise UserError(f"{folder}: {len(files)} image(s) found; at least {MIN_IMAGES} are needed "
                        "(a fixed 20% of them is the test split)")
    x = read_images(files, r, cfg.channels)
    if cfg.binarize:
        x = binarize(x, cfg.seed)
    tr, te = split(len(x), 0.2, seed=cfg.seed)
    if cfg.size:
        tr = tr[: cfg.size]
    tensors = {"x": x}
    if labels is not None:
        tensors["y"] = torch.tensor(labels, dtype=torch.int64)
    train = TensorData(**{k: v[tr] for k, v in tensors.items()})
    test = TensorData(**{k: v[te] for k, v in tensors.items()})
    info = DataInfo("image", tuple(x.shape[1:]), len(names),
                    {"binary": cfg.binarize, "classes": tuple(names), "levels": 256, "folder": str(folder),
                     "files": len(files), "labelled": labels is not None})
    name = f"images-{folder.resolve().name}-{fingerprint(files, folder, r, x.shape[1], cfg.binarize, cfg.seed, cfg.size)}"
    return Dataset(name, info, train, test)

