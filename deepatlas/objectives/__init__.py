"""Training objectives: smooth surrogates of discrete metrics (accuracy, F1) usable as losses."""

from deepatlas.objectives import classifier  # noqa: F401  (registration)
