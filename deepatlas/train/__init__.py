"""The shared trainer: one loop, AdamW, EMA, atomic checkpoints, exact resume, metrics, signals."""

from deepatlas.train.config import TrainConfig  # noqa: F401
from deepatlas.train.trainer import fit  # noqa: F401
