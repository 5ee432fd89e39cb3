"""SimCLR: an encoder f, a projection head g, V random views of every image, NT-Xent on g(f(view)).

Each step draws V views of the batch (augment.py), encodes all V*B of them with the same network and
applies `nt_xent` (infonce.py) with temperature tau; the representation kept is f's output.
The default views are Chen et al. (2020)'s as they act on grey images: random resized crop (area
0.08-1, aspect ratio 3/4-4/3), flip 0.5, and of the colour distortion only brightness and contrast
(saturation, hue and random greyscale do nothing to a one-channel image); docs/simclr.md has the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepatlas.config import option
from deepatlas.nn.conv_encoder import projection_head
from deepatlas.registry import register_method
from deepatlas.representation.augment import AugmentConfig, views
from deepatlas.representation.encoder_method import EncoderMethod, EncoderOptions, image_encoder
from deepatlas.representation.infonce import nt_xent


@register_method("simclr", "representation", "NT-Xent (InfoNCE on cosine similarity / temperature) between augmented views")
class SimCLR(EncoderMethod):
    @dataclass
    class Config(EncoderOptions, AugmentConfig):
        head_dim: int = option(64, "output size of the projection head g (0: the loss sees the features)", low=0)
        temperature: float = option(0.5, "temperature tau of the cosine similarities", low=1e-4)
        views: int = option(2, "views per image; >2 averages over every ordered pair of views (see infonce.py)", low=2)

    def __init__(self, cfg: Config, info):
        super().__init__(cfg, info)
        self.encoder = image_encoder(cfg, info)
        self.head = projection_head(cfg.dim, cfg.head_dim)

    def loss(self, batch):
        x = batch["x"]
        v = views(x, self.cfg, self.cfg.views)  # (V, B, C, H, W)
        z = self.head(self.encoder(v.flatten(0, 1))).unflatten(0, (self.cfg.views, len(x)))  # (V, B, D)
        return {"loss": nt_xent(z, self.cfg.temperature)}


register_method("ntxent", "representation", "alias of simclr")(SimCLR)
