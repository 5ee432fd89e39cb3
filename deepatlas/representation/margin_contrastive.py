"""A siamese encoder trained with the margin contrastive loss (Hadsell, Chopra & LeCun 2006, "DrLIM").

One network G with shared weights embeds both members of a pair; similar pairs are pulled together,
dissimilar ones pushed apart until they are a margin m apart. The loss, its variants in other
libraries and the pair mining are in `representation/margin_loss.py`. Pairs come from labels (same
class: similar) or, with `--model-pairs views`, from two augmented views of an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepatlas.config import option
from deepatlas.errors import UserError
from deepatlas.registry import register_method
from deepatlas.nn.conv_encoder import projection_head
from deepatlas.representation.augment import AugmentConfig, views
from deepatlas.representation.encoder_method import EncoderMethod, EncoderOptions, image_encoder
from deepatlas.representation.margin_loss import margin_contrastive_loss, mine_pairs


@register_method("contrastive", "representation",
                 "siamese encoder with the margin contrastive loss (Hadsell-Chopra-LeCun); pairs from labels or views")
class MarginContrastive(EncoderMethod):
    @dataclass
    class Config(EncoderOptions, AugmentConfig):
        head_dim: int = option(32, "output size of the projection head the loss sees (0: the features themselves)", low=0)
        margin: float = option(1.0, "margin m for dissimilar pairs", low=0.0)
        pos_margin: float = option(0.0, "margin below which similar pairs feel no pull (0: Hadsell et al.)", low=0.0)
        squared: bool = option(True, "squared hinges (Hadsell et al.); --no-squared: plain hinges")
        pairs: str = option("labels", "similar pairs from: labels (same class) | views (two augmentations of an image)",
                            choices=("labels", "views"))
        neg_per_pos: float = option(1.0, "dissimilar pairs mined per similar pair", low=0.0)
        hard: bool = option(False, "mine the closest dissimilar pairs instead of random ones")
        augment: bool = option(False, "augment images before encoding (always on with --pairs views)")

    def __init__(self, cfg: Config, info):
        super().__init__(cfg, info)
        if cfg.pairs == "labels" and info.num_classes < 2:
            raise UserError("--model-pairs labels needs labelled data with at least 2 classes; "
                            "use --model-pairs views (two augmentations of an image are a similar pair)")
        self.encoder = image_encoder(cfg, info)
        self.head = projection_head(cfg.dim, cfg.head_dim)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def loss(self, batch):
        cfg, x = self.cfg, batch["x"]
        if cfg.pairs == "views":
            v = views(x, cfg, 2)  # (2, B, C, H, W)
            z = self.project(v.flatten(0, 1))
            b = len(x)
            y = torch.arange(b, device=x.device).repeat(2)  # view k of image i has "label" i
        else:
            z = self.project(views(x, cfg, 1)[0] if cfg.augment else x)
            y = batch["y"]
        i, j, same = mine_pairs(y, cfg.neg_per_pos, z, cfg.hard)
        loss = margin_contrastive_loss(z[i], z[j], same, cfg.margin, cfg.pos_margin, cfg.squared)
        with torch.no_grad():
            d = (z[i] - z[j]).norm(dim=-1)
            pos_d = d[same > 0].mean() if (same > 0).any() else d.new_zeros(())
            neg_d = d[same == 0].mean() if (same == 0).any() else d.new_zeros(())
        return {"loss": loss, "pos_dist": pos_d, "neg_dist": neg_d}
