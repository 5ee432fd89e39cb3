"""Representation learning: the margin contrastive loss, InfoNCE / NT-Xent (SimCLR), CPC, MI bounds."""

from deepatlas.representation import cpc, margin_contrastive, mi_estimation, simclr, supervised  # noqa: F401
