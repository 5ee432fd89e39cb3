"""RealNVP (Dinh et al. 2017) built from masked affine couplings (coupling.py) and, for images, the
multi-scale architecture (multiscale.py)."""

from __future__ import annotations

from deepatlas.generative.flows.actnorm import ActNorm
from deepatlas.generative.flows.base import Flow, Sequence
from deepatlas.generative.flows.coupling import AffineCoupling, channel_mask, checkerboard_mask, vector_mask
from deepatlas.generative.flows.multiscale import MultiScale
from deepatlas.nn.coupling_convnet import ConvNet
from deepatlas.nn.mlp import mlp


def realnvp(shape: tuple[int, ...], steps: int = 4, levels: int = 2, hidden: int = 64) -> Flow:
    """RealNVP: on images, per level (after the squeeze) `steps` checkerboard couplings with alternating
    parity, then `steps` channel couplings; on vectors, `steps` couplings with alternating halves.
    (ActNorm replaces the paper's batch norm, so that a fresh model is deterministic per example.)"""
    if len(shape) == 1:
        (d,) = shape
        return Sequence([AffineCoupling(vector_mask(d, k % 2), mlp(d, 2 * d, hidden, 2, zero_out=True))
                         for k in range(steps)])

    def make(s):
        c, h, w = s
        layers: list[Flow] = []
        for masks in (checkerboard_mask, channel_mask):
            for k in range(steps):
                layers += [ActNorm(c), AffineCoupling(masks(c, h, w, k % 2), ConvNet(c, 2 * c, hidden))]
        return layers
    return MultiScale(shape, levels, make)
