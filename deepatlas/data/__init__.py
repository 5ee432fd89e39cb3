"""Datasets: each module registers its loader; `load_dataset(DataConfig)` returns train/test splits."""

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData, load_dataset  # noqa: F401
