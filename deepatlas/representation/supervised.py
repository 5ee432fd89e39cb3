"""The supervised ceiling: the same encoder trained with a linear classifier and cross-entropy on labels.
Its features are evaluated like every self-supervised method's (frozen, linear probe and kNN)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from deepatlas.config import option
from deepatlas.errors import UserError
from deepatlas.registry import register_method
from deepatlas.representation.augment import AugmentConfig, augment
from deepatlas.representation.encoder_method import EncoderMethod, EncoderOptions, image_encoder


@register_method("supervised", "representation", "the same encoder trained on labels with cross-entropy (the ceiling)")
class Supervised(EncoderMethod):
    @dataclass
    class Config(EncoderOptions, AugmentConfig):
        augment: bool = option(False, "train on augmented views instead of the images")

    def __init__(self, cfg: Config, info):
        super().__init__(cfg, info)
        if info.num_classes < 2:
            raise UserError("supervised needs labelled data with at least 2 classes; use --data digits or fashion-mnist")
        self.encoder = image_encoder(cfg, info)
        self.classifier = nn.Linear(cfg.dim, info.num_classes)

    def loss(self, batch):
        x = augment(batch["x"], self.cfg) if self.cfg.augment else batch["x"]
        logits = self.classifier(self.encoder(x))
        return {"loss": F.cross_entropy(logits, batch["y"]),
                "acc": (logits.argmax(-1) == batch["y"]).float().mean()}
