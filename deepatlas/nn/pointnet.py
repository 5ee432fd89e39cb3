"""PointNet (Qi et al., 2017): a shared per-point MLP, a symmetric max pool, and learned alignments (T-Nets).

A cloud is a set {x_1..x_N}; f(X) = gamma(max_i h(x_i)) does not depend on the order of the points because
max over i is symmetric and h acts on each point alone. The T-Nets predict a k x k matrix A from the whole
cloud (itself a small PointNet) and apply it to every point, x_i -> A^T x_i, first to the 3-D input and then
to the 64-D features. A is initialised to the identity, and the feature transform is pushed towards an
orthogonal matrix (which loses no information) by the penalty

    L_reg = || I - A A^T ||_F^2 .

Channel widths are the paper's times `width` (1.0: 64, 64 | 64, 128, 1024 | heads 512, 256).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _w(c: int, width: float) -> int:
    return max(4, int(round(c * width)))


class SharedMLP(nn.Sequential):
    """The same MLP on every point: per layer a 1x1 convolution, BatchNorm over all points of the batch, ReLU.

    The weights are held as `nn.Conv1d` (the paper's layout, and that of every saved run), but the layers are
    applied to points-last tensors (B, N, C) as matmuls: on 2 CPU cores oneDNN's (B, C, N) 1x1 convolution took
    ~1.5x as long as the same product through sgemm (bench/RESULTS.md), and BatchNorm over (B*N, C) rows
    avoids a layout change. Same function, same statistics: tested against the Conv1d path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, C_in) -> (B, N, C_out)
        b, n, _ = x.shape
        for layer in self:
            if isinstance(layer, nn.Conv1d):
                x = F.linear(x, layer.weight[:, :, 0], layer.bias)
            elif isinstance(layer, nn.BatchNorm1d):
                x = layer(x.reshape(b * n, -1)).view(b, n, -1)
            else:
                x = layer(x)
        return x


def shared_mlp(channels: list[int]) -> SharedMLP:
    layers = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv1d(c_in, c_out, 1), nn.BatchNorm1d(c_out), nn.ReLU()]
    return SharedMLP(*layers)


def dense(channels: list[int], dropout: float = 0.0) -> nn.Sequential:
    layers = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Linear(c_in, c_out), nn.BatchNorm1d(c_out), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def max_pool(h: torch.Tensor) -> torch.Tensor:
    """(B, N, C) -> (B, C): max over the points. `max(dim)` routes each gradient to the one arg-max point;
    `amax` would split it over tied points, which after a ReLU are only zeros, where the ReLU passes no
    gradient anyway: the same gradient, without amax's backward of four full (B, C, N) passes (a quarter of
    a PointNet training step)."""
    return h.max(dim=1).values


class TNet(nn.Module):
    """Predicts a k x k alignment A from the cloud: shared MLP -> max pool -> MLP -> A = I + Delta."""

    def __init__(self, k: int, width: float = 1.0):
        super().__init__()
        self.k = k
        self.point = shared_mlp([k, _w(64, width), _w(128, width), _w(1024, width)])
        self.head = dense([_w(1024, width), _w(512, width), _w(256, width)])
        self.out = nn.Linear(_w(256, width), k * k)
        nn.init.zeros_(self.out.weight)  # start at the identity transform
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, N, k)
        g = max_pool(self.point(x))  # (B, C) symmetric in the points
        delta = self.out(self.head(g)).view(-1, self.k, self.k)
        return torch.eye(self.k, dtype=x.dtype, device=x.device) + delta  # (B, k, k)


def orthogonality_penalty(a: torch.Tensor) -> torch.Tensor:
    """|| I - A A^T ||_F^2 per matrix of a batch (B, k, k) -> (B,)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    return ((eye - a @ a.transpose(1, 2)) ** 2).sum(dim=(1, 2))


class PointNetEncoder(nn.Module):
    """Input T-Net, MLP(64, 64), feature T-Net, MLP(64, 128, 1024), max pool.

    Returns the global feature (B, G), the per-point features needed by segmentation, and the two
    alignment matrices."""

    def __init__(self, width: float = 1.0, feature_transform: bool = True, in_dim: int = 3,
                 input_transform: bool = True):
        super().__init__()
        c64, c128, c1024 = _w(64, width), _w(128, width), _w(1024, width)
        self.input_tnet = TNet(in_dim, width) if input_transform else None
        self.mlp1 = shared_mlp([in_dim, c64, c64])
        self.feature_tnet = TNet(c64, width) if feature_transform else None
        self.mlp2a = shared_mlp([c64, c128])
        self.mlp2b = shared_mlp([c128, c1024])
        self.local_dims = (c64, c128)
        self.global_dim = c1024

    def forward(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        x = points  # (B, N, 3): points last, as the shared MLPs take them
        a_in = None
        if self.input_tnet is not None:
            a_in = self.input_tnet(x)
            x = torch.bmm(x, a_in)  # every point x_i -> A^T x_i (rows: x_i^T A)
        x = self.mlp1(x)  # (B, N, 64)
        a_feat = None
        if self.feature_tnet is not None:
            a_feat = self.feature_tnet(x)
            x = torch.bmm(x, a_feat)
        f64 = x
        f128 = self.mlp2a(f64)  # (B, N, 128)
        g = max_pool(self.mlp2b(f128))  # (B, 1024)
        return {"global": g, "f64": f64, "f128": f128, "a_in": a_in, "a_feat": a_feat}


class PointNetClassifier(nn.Module):
    def __init__(self, num_classes: int, width: float = 1.0, feature_transform: bool = True, dropout: float = 0.3,
                 input_transform: bool = True):
        super().__init__()
        self.encoder = PointNetEncoder(width, feature_transform, input_transform=input_transform)
        self.head = nn.Sequential(dense([self.encoder.global_dim, _w(512, width), _w(256, width)], dropout),
                                  nn.Linear(_w(256, width), num_classes))

    def forward(self, points: torch.Tensor) -> dict[str, torch.Tensor]:  # points: (B, N, 3)
        enc = self.encoder(points)
        return {"logits": self.head(enc["global"]), "a_in": enc["a_in"], "a_feat": enc["a_feat"]}


class PointNetSegmenter(nn.Module):
    """Per-point labels from [local features, global feature, one-hot shape class] through a shared MLP."""

    def __init__(self, num_parts: int, num_classes: int, width: float = 1.0, feature_transform: bool = True,
                 input_transform: bool = True):
        super().__init__()
        self.num_classes = num_classes
        self.encoder = PointNetEncoder(width, feature_transform, input_transform=input_transform)
        c_in = sum(self.encoder.local_dims) + self.encoder.global_dim + num_classes
        self.head = nn.Sequential(shared_mlp([c_in, _w(512, width), _w(256, width), _w(128, width)]),
                                  nn.Conv1d(_w(128, width), num_parts, 1))  # head[1]: applied points-last, below

    def forward(self, points: torch.Tensor, shape_class: torch.Tensor) -> dict[str, torch.Tensor]:
        enc = self.encoder(points)
        n = points.shape[1]
        onehot = nn.functional.one_hot(shape_class, self.num_classes).to(points.dtype)
        glob = torch.cat([enc["global"], onehot], 1)[:, None, :].expand(-1, n, -1)  # same for every point
        x = torch.cat([enc["f64"], enc["f128"], glob], 2)  # (B, N, C)
        out = self.head[1]
        logits = F.linear(self.head[0](x), out.weight[:, :, 0], out.bias)
        return {"logits": logits, "a_in": enc["a_in"], "a_feat": enc["a_feat"]}  # (B, N, P)
