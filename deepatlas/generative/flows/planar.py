"""Planar flow layer (Rezende & Mohamed 2015): f(x) = x + u_hat h(w.x + b), h = tanh.

    log |det df/dx| = log |1 + u_hat . psi(x)|,   psi(x) = h'(w.x + b) w
Invertibility needs w.u_hat >= -1; u_hat = u + (m(w.u) - w.u) w / |w|^2 with m(a) = -1 + softplus(a)
enforces it in exact arithmetic. In floating point softplus(a) underflows to 0 for a very negative a, and
w.u_hat recomputed from u_hat can round below -1: the Jacobian 1 + h'(.) w.u_hat then reaches 0 or changes
sign. So m(a) = -(1 - DELTA) + softplus(a), DELTA = 1e-3, and the log-determinant uses the scalar m itself:
1 + h' m >= DELTA for every h' in [0, 1], whatever w and u are. The inverse has no closed form but is one-dimensional: alpha = w.x solves
alpha + (w.u_hat) h(alpha + b) = w.y, a monotone equation solved by bisection; then x = y - u_hat h(alpha + b).
Initialised as the identity (u_hat = 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.generative.flows.base import Flow

DELTA = 1e-3  # margin of w.u_hat above -1
SOFTPLUS_INV = math.log(math.expm1(1 - DELTA))  # softplus(a) = 1 - DELTA at this a, so m(a) = 0


class Planar(Flow):
    def __init__(self, dim: int, identity: bool = True):
        super().__init__()
        w = torch.randn(dim) / math.sqrt(dim)
        self.w = nn.Parameter(w)
        self.b = nn.Parameter(torch.zeros(()))
        u = w * SOFTPLUS_INV / w.dot(w) if identity else torch.randn(dim) / math.sqrt(dim)
        self.u = nn.Parameter(u)

    def wu_hat(self) -> torch.Tensor:
        """m(w.u) = w.u_hat >= -1 + DELTA."""
        return -(1 - DELTA) + F.softplus(self.w.dot(self.u))

    def u_hat(self) -> torch.Tensor:
        wu = self.w.dot(self.u)
        return self.u + (self.wu_hat() - wu) * self.w / self.w.dot(self.w)

    def forward(self, x):
        u = self.u_hat()
        a = x @ self.w + self.b  # (B,)
        h = torch.tanh(a)
        psi_u = (1 - h ** 2) * self.wu_hat()
        return x + h[:, None] * u, torch.log(torch.abs(1 + psi_u) + 1e-12)

    @torch.no_grad()
    def inverse(self, y, iters: int = 100):
        u = self.u_hat().double()
        w, b = self.w.double(), self.b.double()
        wy, c = y.double() @ w, self.wu_hat().double()
        lo, hi = wy - c.abs() - 1, wy + c.abs() + 1
        for _ in range(iters):  # g(alpha) = alpha + c tanh(alpha + b) - w.y is non-decreasing
            mid = (lo + hi) / 2
            g = mid + c * torch.tanh(mid + b) - wy
            lo, hi = torch.where(g < 0, mid, lo), torch.where(g < 0, hi, mid)
        alpha = (lo + hi) / 2
        return (y.double() - torch.tanh(alpha + b)[:, None] * u).to(y.dtype)
