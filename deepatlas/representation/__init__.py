"""Representation learning: the margin contrastive loss, InfoNCE / NT-Xent (SimCLR), CPC, MI bounds."""
