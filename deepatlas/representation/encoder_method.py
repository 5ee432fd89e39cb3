"""What every representation method on images shares: a ConvEncoder backbone whose output is the
representation, `embed(x)`, and an evaluation of frozen features (linear probe, kNN, t-SNE picture).

Each method adds a head and its objective on top; the features evaluated are always the backbone's
(before any projection head), as in SimCLR.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from deepatlas.config import option
from deepatlas.data.base import IMAGE_DATASETS
from deepatlas.errors import UserError
from deepatlas.method import Method
from deepatlas.nn.conv_encoder import ConvEncoder

TRAIN_DEFAULTS = {"steps": 1000, "batch_size": 128, "lr": 1e-3, "warmup": 50, "ema_decay": 0.99,
                  "ckpt_every": 500, "log_every": 50}


@dataclass
class EncoderOptions:
    width: int = option(32, "channels of the first conv block (then x2, x4)", low=4)
    dim: int = option(128, "feature (representation) dimension", low=2)
    probe_train: int = option(10000, "training examples whose features fit the linear probe and kNN at eval", low=10)
    knn_k: int = option(10, "neighbours in the kNN evaluation", low=1)


def image_encoder(cfg: EncoderOptions, info, size: int | None = None) -> ConvEncoder:
    if info.kind != "image" or len(info.shape) != 3:
        raise UserError(f"this method needs image data (N, C, H, W), got {info.kind} data of shape {info.shape}; "
                        "use --data digits or --data fashion-mnist")
    c, h, _ = info.shape
    return ConvEncoder(c, size or h, cfg.width, cfg.dim)


class EncoderMethod(Method):
    """Base class: subclasses set self.encoder (or override `embed`) and define `loss`."""

    datasets = IMAGE_DATASETS

    defaults = {"train": TRAIN_DEFAULTS}
    evaluate_writes_pictures = True  # a t-SNE picture of the test features

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Frozen features (N, dim) of inputs x, computed in chunks."""
        was = self.training
        self.eval()
        out = torch.cat([self.encoder(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        self.train(was)
        return out

    def evaluate(self, dataset, n: int, generator=None, opts=None, folder=None) -> dict[str, float]:
        """Linear-probe and kNN test accuracy of frozen features: fitted on up to cfg.probe_train training
        examples, scored on the first n test examples; a t-SNE PNG of those test features in `folder`."""
        from deepatlas.eval.knn import knn_accuracy
        from deepatlas.eval.linear_probe import linear_probe

        if dataset.info.num_classes < 2:
            raise UserError("the linear probe and kNN evaluation of the features need labelled data with at least 2 "
                            "classes (for your own pictures: one subfolder per class)")
        tr = dataset.train.get(torch.arange(min(len(dataset.train), self.cfg.probe_train)))
        te = dataset.test.get(torch.arange(min(len(dataset.test), n)))
        ftr, fte = self.embed(tr["x"]), self.embed(te["x"])
        result = {"linear_probe_acc": linear_probe(ftr, tr["y"], fte, te["y"]),
                  "knn_acc": knn_accuracy(ftr, tr["y"], fte, te["y"], k=self.cfg.knn_k),
                  "probe_train": len(ftr), "test": len(fte)}
        if folder is not None:
            from deepatlas.eval.embedding_picture import tsne_png

            path = tsne_png(fte, te["y"], Path(folder) / "tsne.png", title=f"{type(self).__name__}: t-SNE of test features",
                            class_names=self.info.extra.get("classes"))
            result["tsne_png"] = str(path)
        return result
