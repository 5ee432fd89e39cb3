"""Datasets: each module registers its loader; `load_dataset(DataConfig)` returns train/test splits."""

from deepatlas.data import digits, fashion_mnist, reversal, text, toy2d  # noqa: F401  (registration)

from deepatlas.data import coco, digits, fashion_mnist, scenes, toy2d  # noqa: F401  (registration)

from deepatlas.data import digits, fashion_mnist, imbalanced, pointclouds, toy2d  # noqa: F401  (registration)
from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData, load_dataset  # noqa: F401
