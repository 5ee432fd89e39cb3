"""Point clouds sampled from generated meshes, and from OFF/PLY files in ModelNet's folder layout.

- `shapes3d`: 10 primitive classes (sphere, cube, cylinder, cone, torus, pyramid, octahedron, tetrahedron,
  capsule, hemisphere), each with random proportions; points uniform on the surface.
- `parts3d`: 5 composite objects (table, chair, lamp, mushroom, rocket) built from primitives; every point
  carries the label of the part it was sampled from (13 parts in all, like ShapeNet-part's per-category parts).
- `pointcloud-files`: `--path ROOT` with ROOT/CLASS/train/*.off|ply and ROOT/CLASS/test/*.off|ply (ModelNet);
  meshes are sampled uniformly on their surface, bare PLY point clouds are resampled, and a PLY vertex
  property `label` (or `part`) becomes per-point part labels.

Each cloud is centred and scaled into the unit ball, then augmented as in PointNet: anisotropic scaling
by U(0.8, 1.25) per axis, a random rotation (`--variant so3`, the default, uniform on SO(3); `z`: about the
vertical axis; `none`) and Gaussian jitter (sigma 0.01, clipped at 0.05). Examples are (points, 3).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from deepatlas.data.base import DataConfig, DataInfo, Dataset, TensorData
from deepatlas.errors import UserError, unknown
from deepatlas.pointcloud.mesh import normalize, random_rotation, sample_surface
from deepatlas.registry import register_dataset

ROTATIONS = ("so3", "z", "none")
TriangleMesh = tuple[torch.Tensor, torch.Tensor]  # vertices (nv, 3), faces (nf, 3) long; files: pointcloud.files.MeshFile


# --------------------------------------------------------------------------- primitive meshes

def grid(fn, u_range, v_range, nu: int = 24, nv: int = 12) -> TriangleMesh:
    """Triangulate a parametric surface p(u, v) on a (nu x nv) grid."""
    u = torch.linspace(*u_range, nu + 1)
    v = torch.linspace(*v_range, nv + 1)
    uu, vv = torch.meshgrid(u, v, indexing="ij")
    pts = torch.stack(fn(uu, vv), -1).reshape(-1, 3)
    idx = torch.arange((nu + 1) * (nv + 1)).view(nu + 1, nv + 1)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    faces = torch.cat([torch.stack([a, b, c], -1).view(-1, 3), torch.stack([a, c, d], -1).view(-1, 3)])
    return pts, faces


def join(*meshes: TriangleMesh) -> TriangleMesh:
    vs, fs, off = [], [], 0
    for v, f in meshes:
        vs.append(v)
        fs.append(f + off)
        off += len(v)
    return torch.cat(vs), torch.cat(fs)


def affine(mesh: TriangleMesh, scale=(1.0, 1.0, 1.0), shift=(0.0, 0.0, 0.0), rot: torch.Tensor | None = None) -> TriangleMesh:
    v = mesh[0] * torch.tensor(scale)
    if rot is not None:
        v = v @ rot.T
    return v + torch.tensor(shift), mesh[1]


TWO_PI = (0.0, 2 * math.pi)


def sphere_cap(v_range=(0.0, math.pi)) -> TriangleMesh:
    return grid(lambda u, v: (torch.cos(u) * torch.sin(v), torch.sin(u) * torch.sin(v), torch.cos(v)), TWO_PI, v_range)


def disk(z: float = 0.0) -> TriangleMesh:
    return grid(lambda u, r: (r * torch.cos(u), r * torch.sin(u), torch.full_like(u, z)), TWO_PI, (0.0, 1.0), nv=4)


def tube(z0: float = -1.0, z1: float = 1.0) -> TriangleMesh:
    return grid(lambda u, z: (torch.cos(u), torch.sin(u), z), TWO_PI, (z0, z1), nv=4)


def cylinder_fixed() -> TriangleMesh:
    return join(tube(), disk(-1.0), disk(1.0))


def cone_fixed() -> TriangleMesh:
    side = grid(lambda u, t: ((1 - t) * torch.cos(u), (1 - t) * torch.sin(u), 2 * t - 1), TWO_PI, (0.0, 1.0), nv=6)
    return join(side, disk(-1.0))


def sphere(g) -> TriangleMesh:
    return sphere_cap()


def cylinder(g) -> TriangleMesh:
    return affine(cylinder_fixed(), (1, 1, _u(g, 0.5, 1.5)))


def cone(g) -> TriangleMesh:
    return affine(cone_fixed(), (1, 1, _u(g, 0.7, 1.5)))


def torus(g) -> TriangleMesh:
    r = _u(g, 0.2, 0.45)
    return grid(lambda u, v: ((1 + r * torch.cos(v)) * torch.cos(u), (1 + r * torch.cos(v)) * torch.sin(u),
                              r * torch.sin(v)), TWO_PI, TWO_PI, nu=32, nv=12)


def hemisphere(g) -> TriangleMesh:
    return join(sphere_cap((0.0, math.pi / 2)), disk(0.0))


def capsule(g) -> TriangleMesh:
    h = _u(g, 0.6, 1.6)
    top = affine(sphere_cap((0.0, math.pi / 2)), shift=(0, 0, h))
    bottom = affine(sphere_cap((math.pi / 2, math.pi)), shift=(0, 0, -h))
    return join(affine(tube(), (1, 1, h)), top, bottom)


def _poly(vertices, faces) -> TriangleMesh:
    return torch.tensor(vertices, dtype=torch.float32), torch.tensor(faces, dtype=torch.int64)


def cube(g) -> TriangleMesh:
    v = [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
    f = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
         [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return _poly(v, f)


def pyramid(g) -> TriangleMesh:
    v = [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [0, 0, _u(g, 0.6, 1.4)]]
    return _poly(v, [[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])


def octahedron(g) -> TriangleMesh:
    v = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    f = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
    return _poly(v, f)


def tetrahedron(g) -> TriangleMesh:
    return _poly([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], [[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])


PRIMITIVES = {"sphere": sphere, "cube": cube, "cylinder": cylinder, "cone": cone, "torus": torus,
              "pyramid": pyramid, "octahedron": octahedron, "tetrahedron": tetrahedron,
              "capsule": capsule, "hemisphere": hemisphere}


def _u(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


# --------------------------------------------------------------------------- composite objects with parts

def _box(size, at, rot=None) -> TriangleMesh:
    return affine(cube(None), tuple(s / 2 for s in size), at, rot)


def _rz(t: float) -> torch.Tensor:
    c, s = math.cos(t), math.sin(t)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _legs(w, d, h, z_top, thick) -> TriangleMesh:
    return join(*[_box((thick, thick, h), (sx * w, sy * d, z_top - h / 2)) for sx in (-1, 1) for sy in (-1, 1)])


def table(g):
    w, d, h = _u(g, 0.8, 1.2), _u(g, 0.5, 0.9), _u(g, 0.6, 1.0)
    return [(_box((2 * w, 2 * d, 0.08), (0, 0, 0)), "top"), (_legs(w - 0.08, d - 0.08, h, -0.04, 0.08), "leg")]


def chair(g):
    w, h, back = _u(g, 0.45, 0.6), _u(g, 0.5, 0.8), _u(g, 0.6, 1.0)
    return [(_box((2 * w, 2 * w, 0.08), (0, 0, 0)), "seat"),
            (_box((2 * w, 0.08, back), (0, w - 0.04, 0.04 + back / 2)), "back"),
            (_legs(w - 0.05, w - 0.05, h, -0.04, 0.07), "leg")]


def lamp(g):
    pole, shade = _u(g, 0.8, 1.4), _u(g, 0.4, 0.7)
    return [(affine(cylinder_fixed(), (0.5, 0.5, 0.04), (0, 0, 0)), "base"),
            (affine(cylinder_fixed(), (0.04, 0.04, pole / 2), (0, 0, pole / 2)), "pole"),
            (affine(cone_fixed(), (shade, shade, 0.3), (0, 0, pole + 0.1)), "shade")]


def mushroom(g):
    stem, cap = _u(g, 0.5, 1.0), _u(g, 0.6, 1.0)
    return [(affine(cylinder_fixed(), (0.18, 0.18, stem / 2), (0, 0, stem / 2)), "stem"),
            (affine(hemisphere(g), (cap, cap, _u(g, 0.3, 0.6)), (0, 0, stem)), "cap")]


def rocket(g):
    body, nose, fin = _u(g, 0.8, 1.4), _u(g, 0.3, 0.6), _u(g, 0.3, 0.5)
    fins = [_box((fin, 0.04, fin), (0.25 + fin / 2, 0, -body + fin / 2)) for _ in range(3)]
    fins = [(v @ _rz(2 * math.pi * k / 3).T, f) for k, (v, f) in enumerate(fins)]  # three around the body
    return [(affine(cylinder_fixed(), (0.25, 0.25, body)), "body"),
            (affine(cone_fixed(), (0.25, 0.25, nose / 2), (0, 0, body + nose / 2)), "nose"),
            (join(*fins), "fin")]


COMPOSITES = {"table": (table, ("top", "leg")), "chair": (chair, ("seat", "back", "leg")),
              "lamp": (lamp, ("base", "pole", "shade")), "mushroom": (mushroom, ("stem", "cap")),
              "rocket": (rocket, ("body", "nose", "fin"))}
PART_NAMES = [f"{obj}.{part}" for obj, (_, parts) in COMPOSITES.items() for part in parts]


# --------------------------------------------------------------------------- sampling and augmentation

def augment(points: torch.Tensor, g: torch.Generator, rotation: str) -> torch.Tensor:
    p = normalize(points)
    p = p * (0.8 + 0.45 * torch.rand(3, generator=g))  # anisotropic scale in U(0.8, 1.25)
    p = p @ random_rotation(g, rotation).T
    return p + (0.01 * torch.randn(p.shape, generator=g)).clamp(-0.05, 0.05)


def make_shapes(n: int, points: int, seed: int, rotation: str = "so3") -> tuple[torch.Tensor, torch.Tensor]:
    """n clouds of `points` points, classes in turn: x (n, points, 3), y (n,)."""
    g = torch.Generator().manual_seed(seed)
    builders = list(PRIMITIVES.values())
    xs, ys = [], []
    for i in range(n):
        k = i % len(builders)
        v, f = builders[k](g)
        pts, _ = sample_surface(v, f, points, g)
        xs.append(augment(pts, g, rotation))
        ys.append(k)
    return torch.stack(xs), torch.tensor(ys)


def make_parts(n: int, points: int, seed: int, rotation: str = "so3"):
    """n composite clouds: x (n, points, 3), y (n,) object class, parts (n, points) global part ids."""
    g = torch.Generator().manual_seed(seed)
    names = list(COMPOSITES)
    xs, ys, ps = [], [], []
    for i in range(n):
        k = i % len(names)
        build, _ = COMPOSITES[names[k]]
        pieces = build(g)
        v, f = join(*[m for m, _ in pieces])
        face_part = torch.cat([torch.full((len(m[1]),), PART_NAMES.index(f"{names[k]}.{p}")) for m, p in pieces])
        pts, face = sample_surface(v, f, points, g)
        xs.append(augment(pts, g, rotation))
        ys.append(k)
        ps.append(face_part[face])
    return torch.stack(xs), torch.tensor(ys), torch.stack(ps)


def _rotation(cfg: DataConfig) -> str:
    rot = cfg.variant or "so3"
    if rot not in ROTATIONS:
        raise unknown("point-cloud rotation (--data-variant)", rot, ROTATIONS)
    return rot


@register_dataset("shapes3d", "pointcloud", "10 primitive surfaces (sphere, cube, torus, ...) as point clouds, "
                                            "random proportions/scale/rotation/jitter; --variant so3 | z | none",
                  fields=("variant", "size", "points", "seed"))
def load_shapes(cfg: DataConfig) -> Dataset:
    rot, n = _rotation(cfg), cfg.size or 2000
    x, y = make_shapes(n, cfg.points, cfg.seed, rot)
    xt, yt = make_shapes(max(n // 4, len(PRIMITIVES)), cfg.points, cfg.seed + 10_000, rot)
    info = DataInfo("points", (cfg.points, 3), len(PRIMITIVES), {"class_names": list(PRIMITIVES)})
    return Dataset("shapes3d", info, TensorData(x=x, y=y), TensorData(x=xt, y=yt))


def part_info(points: int, class_names: list[str], part_names: list[str], class_parts: list[list[int]]) -> DataInfo:
    return DataInfo("points", (points, 3), len(class_names),
                    {"class_names": class_names, "part_names": part_names, "num_parts": len(part_names),
                     "class_parts": class_parts})


@register_dataset("parts3d", "pointcloud", "5 composite objects (table, chair, lamp, mushroom, rocket) with "
                                           "per-point part labels (13 parts); --variant so3 | z | none",
                  fields=("variant", "size", "points", "seed"))
def load_parts(cfg: DataConfig) -> Dataset:
    rot, n = _rotation(cfg), cfg.size or 1500
    x, y, p = make_parts(n, cfg.points, cfg.seed, rot)
    xt, yt, pt = make_parts(max(n // 3, len(COMPOSITES)), cfg.points, cfg.seed + 10_000, rot)
    class_parts = [[PART_NAMES.index(f"{c}.{q}") for q in parts] for c, (_, parts) in COMPOSITES.items()]
    info = part_info(cfg.points, list(COMPOSITES), PART_NAMES, class_parts)
    return Dataset("parts3d", info, TensorData(x=x, y=y, parts=p), TensorData(x=xt, y=yt, parts=pt))


# --------------------------------------------------------------------------- files

def cloud_from_file(path: Path, points: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`points` points of a mesh (uniform on its surface) or of a bare cloud (resampled), and part labels."""
    from deepatlas.pointcloud.files import read_mesh

    mesh = read_mesh(path)
    if len(mesh.vertices) == 0:
        raise UserError(f"{path}: has no vertices")
    labels = mesh.vertex_props.get("label", mesh.vertex_props.get("part"))
    if labels is not None and not bool(((labels >= 0) & (labels == labels.round())).all()):
        raise UserError(f"{path}: per-vertex part labels must be non-negative integers")
    if mesh.faces is not None and labels is None:
        try:
            pts, _ = sample_surface(mesh.vertices, mesh.faces, points, g)
        except ValueError:
            raise UserError(f"{path}: the mesh has no surface area") from None
        return normalize(pts.double()).float(), None  # double: float32 sums of coordinates near 3e38 overflow
    replace = len(mesh.vertices) < points
    idx = (torch.randint(len(mesh.vertices), (points,), generator=g) if replace
           else torch.randperm(len(mesh.vertices), generator=g)[:points])
    return normalize(mesh.vertices[idx].double()).float(), (labels[idx].long() if labels is not None else None)


@register_dataset("pointcloud-files", "pointcloud", "OFF/PLY files in ModelNet layout: --path ROOT with "
                                                    "ROOT/CLASS/{train,test}/*.off|ply",
                  fields=("path", "size", "points", "seed"))
def load_files(cfg: DataConfig) -> Dataset:
    root = Path(cfg.path)
    if not cfg.path or not root.is_dir():
        raise UserError(f"--data-path must be a folder ROOT/CLASS/{{train,test}}/*.off|ply (ModelNet layout), got {cfg.path!r}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not classes:
        raise UserError(f"{root}: no class folders found (expected ROOT/CLASS/train/*.off)")
    g = torch.Generator().manual_seed(cfg.seed)
    splits = {}
    for split in ("train", "test"):
        xs, ys, ps = [], [], []
        for k, c in enumerate(classes):
            files = sorted(f for f in (root / c / split).glob("*") if f.suffix.lower() in (".off", ".ply"))
            if split == "train" and cfg.size:
                files = files[: cfg.size]
            for f in files:
                x, p = cloud_from_file(f, cfg.points, g)
                xs.append(x)
                ys.append(k)
                ps.append(p)
        if not xs:
            raise UserError(f"{root}: no .off or .ply files in any CLASS/{split}/ folder")
        tensors = {"x": torch.stack(xs), "y": torch.tensor(ys)}
        if all(p is not None for p in ps):
            tensors["parts"] = torch.stack(ps)
        splits[split] = TensorData(**tensors)
    extra = {"class_names": classes}
    if "parts" in splits["train"].tensors and "parts" in splits["test"].tensors:
        n_parts = int(max(splits[s]["parts"].max() for s in splits)) + 1
        seen = [sorted(set(splits["train"]["parts"][splits["train"]["y"] == k].flatten().tolist())) for k in range(len(classes))]
        extra.update(part_names=[f"part{i}" for i in range(n_parts)], num_parts=n_parts, class_parts=seen)
    return Dataset(f"pointcloud-files:{root.name}", DataInfo("points", (cfg.points, 3), len(classes), extra),
                   splits["train"], splits["test"])
