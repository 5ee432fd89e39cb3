"""Glow (Kingma & Dhariwal 2018): each step is actnorm (actnorm.py) -> invertible 1x1 convolution
(invconv.py) -> channel-mask affine coupling (coupling.py). Images use the multi-scale architecture
(multiscale.py); vectors a plain sequence of steps.
"""

from __future__ import annotations

from deepatlas.generative.flows.actnorm import ActNorm
from deepatlas.generative.flows.base import Flow, Sequence
from deepatlas.generative.flows.coupling import AffineCoupling, channel_mask, vector_mask
from deepatlas.generative.flows.invconv import InvConv1x1
from deepatlas.generative.flows.multiscale import MultiScale
from deepatlas.nn.coupling_convnet import ConvNet
from deepatlas.nn.mlp import mlp


def glow_step(shape: tuple[int, ...], hidden: int, parity: int, identity: bool = False) -> list[Flow]:
    if len(shape) == 3:
        c, h, w = shape
        coupling = AffineCoupling(channel_mask(c, h, w, parity), ConvNet(c, 2 * c, hidden))
    else:
        (d,) = shape
        coupling = AffineCoupling(vector_mask(d, parity), mlp(d, 2 * d, hidden, 2, zero_out=True))
    return [ActNorm(shape[0]), InvConv1x1(shape[0], identity), coupling]


def glow(shape: tuple[int, ...], steps: int = 4, levels: int = 2, hidden: int = 64,
         identity: bool = False) -> Flow:
    """`steps` Glow steps per level; images get `levels` levels of the multi-scale architecture."""
    def make(s):
        return [layer for k in range(steps) for layer in glow_step(s, hidden, k % 2, identity)]
    if len(shape) == 3:
        return MultiScale(shape, levels, make)
    return Sequence(make(shape))
