"""Datasets: each module registers its loader; `load_dataset(DataConfig)` returns train/test splits."""

from deepatlas.data import (coco, digits, fashion_mnist, imbalanced, pointclouds, reversal, scenes, text,  # noqa: F401
                            toy2d)  # (registration)
from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData, load_dataset  # noqa: F401
