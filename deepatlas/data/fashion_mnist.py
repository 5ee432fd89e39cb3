"""Fashion-MNIST from IDX files: 60,000 train and 10,000 test 28x28 grey images, 10 classes.

Default folder: /usr/share/datasets/fashion-mnist (Debian package `dataset-fashion-mnist`);
`--path` takes any folder holding the four files (gzipped or not).
"""

from __future__ import annotations

from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData, binarize
from deepatlas.data.idx import read_idx
from deepatlas.errors import UserError
from deepatlas.registry import register_dataset

DEFAULT = Path("/usr/share/datasets/fashion-mnist")
HINT = "install it with `apt-get install dataset-fashion-mnist` or pass --data-path to a folder with the IDX files"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).exists():
            return folder / name
    return folder / (stem + ".gz")


def load_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    img_path, lab_path = (_find(folder, s) for s in FILES[split])
    images, labels = read_idx(img_path, HINT), read_idx(lab_path, HINT)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise UserError(f"{img_path}: expected N images of HxW and N labels, got {images.shape} and {labels.shape}")
    x = torch.from_numpy(images.astype("float32"))[:, None] / 127.5 - 1.0  # (N, 1, 28, 28) in [-1, 1]
    return x, torch.from_numpy(labels.astype("int64"))


@register_dataset("fashion-mnist", "data", "70,000 28x28 grey clothes images, 10 classes (IDX files; --data-path)",
                  fields=("path", "size", "binarize", "seed"))
def load(cfg: DataConfig) -> Dataset:
    folder = Path(cfg.path) if cfg.path else DEFAULT
    if not folder.is_dir():
        raise UserError(f"fashion-mnist folder not found: {folder}; {HINT}")
    (xtr, ytr), (xte, yte) = load_split(folder, "train"), load_split(folder, "test")
    if cfg.binarize:
        xtr, xte = binarize(xtr, cfg.seed), binarize(xte, cfg.seed + 1)
    if cfg.size:
        xtr, ytr = xtr[: cfg.size], ytr[: cfg.size]
    info = DataInfo("image", tuple(xtr.shape[1:]), 10, {"binary": cfg.binarize, "classes": CLASSES, "levels": 256})
    return Dataset("fashion-mnist", info, TensorData(x=xtr, y=ytr), TensorData(x=xte, y=yte))
