"""What every dataset provides: a `DataInfo` (what one example looks like) and train/test splits
as `TensorData` (a dict of tensors sharing their first dimension).

Images are float tensors (N, C, H, W) scaled to [-1, 1]; labels are int64 `y`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from deepatlas.config import option

# The datasets each kind of method accepts (a method's `datasets`); a new image dataset goes in here once.
IMAGE_DATASETS = ("digits", "fashion-mnist", "images")  # images: your own folder (--data-path)
TEXT_DATASETS = ("text", "reversal")
DETECTION_DATASETS = ("scenes", "coco")

@dataclass
class DataConfig:
    name: str = option("digits", "dataset name (see `deepatlas list`)")
    path: str = option("", "file or folder to read instead of the default location")
    variant: str = option("", "dataset variant, e.g. toy2d: moons | swissroll | gaussians8 | checkerboard")
    size: int = option(0, "number of examples to generate or keep (0: the dataset's default / all)", low=0)
    binarize: bool = option(False, "binarise images with a fixed-seed Bernoulli draw (pixel = 1 with prob. intensity)")
    seq_len: int = option(128, "tokens per training sequence (text)", low=1)
    tokenizer: str = option("char", "text tokens: char | bpe", choices=("char", "bpe"))
    vocab_size: int = option(512, "BPE vocabulary size (text, --tokenizer bpe)", low=8)
    seed: int = option(0, "seed for generated data and fixed splits")
    points: int = option(1024, "points per cloud (point-cloud datasets)", low=1)
    resolution: int = option(0, "square side in pixels: images are resized + centre-cropped to it (images, default 32), "
                                "coco images letterboxed to it (default 96); 0: the dataset's default", low=0)
    channels: int = option(0, "image channels (images, coco): 0 auto (RGB if any image is colour, else grey) | "
                              "1 grey | 3 RGB", choices=(0, 1, 3))


@dataclass
class DataInfo:
    kind: str  # "image" | "vector" | "text" | "scene" | "points"
    shape: tuple[int, ...]  # one example's x
    num_classes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class TensorData:
    """A split: tensors indexed together along dim 0."""

    def __init__(self, **tensors: torch.Tensor):
        sizes = {len(t) for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"tensors differ in length: { {k: len(v) for k, v in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def get(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v[idx] for k, v in self.tensors.items()}

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.tensors[key]


@dataclass
class Dataset:
    name: str
    info: DataInfo
    train: Any  # TensorData or anything with __len__ and get(idx) -> dict
    test: Any
    val: Any = None  # a validation split, where the dataset has one (text)


def load_dataset(cfg: DataConfig) -> Dataset:
    from deepatlas.registry import get

    return get("dataset", cfg.name).obj(cfg)


def split(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random train/test split of range(n); the two index sets never overlap."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def binarize(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Fixed stochastic binarisation of images in [-1, 1]: pixel = 1 with probability (x+1)/2."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(x.shape, generator=g) < (x + 1) / 2).float()
