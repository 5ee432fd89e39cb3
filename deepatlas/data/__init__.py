"""Datasets: each module registers its loader; `load_dataset(DataConfig)` returns train/test splits."""

from deepatlas.data import (coco, digits, fashion_mnist, images, imbalanced, pointclouds, reversal, scenes,  # noqa: F401
                            text, toy2d)  # (registration)
from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData, load_dataset  # noqa: F401
