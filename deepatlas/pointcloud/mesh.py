"""Triangle meshes to point clouds: uniform sampling of the surface, normalisation, rotations.

A point uniform on a triangle mesh: pick face f with probability area_f / sum(area), then barycentric
weights (1 - sqrt(r1), sqrt(r1)(1 - r2), sqrt(r1) r2) with r1, r2 ~ U(0, 1), which are uniform on the
triangle. Because sampling is done after any affine map of the vertices, a scaled or sheared primitive
is still sampled uniformly over its (changed) area.
"""

from __future__ import annotations

import math

import torch


def face_areas(v: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return 0.5 * torch.linalg.cross(b - a, c - a).norm(dim=1)


def sample_surface(v: torch.Tensor, f: torch.Tensor, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points uniform on the mesh (V (nv, 3), F (nf, 3) long) and the face each one lies on."""
    area = face_areas(v, f)
    if not torch.isfinite(area).all() or area.sum() <= 0:
        raise ValueError("the mesh has no surface area")
    face = torch.multinomial(area, n, replacement=True, generator=g)
    r1 = torch.rand(n, 1, generator=g, dtype=v.dtype).sqrt()
    r2 = torch.rand(n, 1, generator=g, dtype=v.dtype)
    a, b, c = v[f[face, 0]], v[f[face, 1]], v[f[face, 2]]
    return (1 - r1) * a + r1 * (1 - r2) * b + r1 * r2 * c, face


def normalize(points: torch.Tensor) -> torch.Tensor:
    """Centre at the centroid and scale into the unit ball (as ModelNet / ShapeNet clouds are prepared)."""
    p = points - points.mean(dim=-2, keepdim=True)
    return p / p.norm(dim=-1).amax(dim=-1, keepdim=True)[..., None].clamp_min(1e-12)


def random_rotation(g: torch.Generator, kind: str = "so3") -> torch.Tensor:
    """A 3x3 rotation: uniform on SO(3) (QR of a Gaussian matrix, signs fixed), or about the z axis."""
    if kind == "z":
        t = float(torch.rand((), generator=g)) * 2 * math.pi
        c, s = math.cos(t), math.sin(t)
        return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    if kind == "none":
        return torch.eye(3)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.float()
