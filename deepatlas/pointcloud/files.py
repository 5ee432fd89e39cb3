"""OFF and PLY files (ModelNet ships OFF meshes; ShapeNet-style data is often PLY), read and written.

`read_mesh(path) -> MeshFile` gives vertices (nv, 3), faces (nf, 3) (polygons are fanned into triangles;
none for a bare point cloud) and any extra per-vertex properties of a PLY file (e.g. `label` for parts).
PLY is read in ascii, binary_little_endian and binary_big_endian. A malformed file raises a UserError
naming the file and what is wrong with it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepatlas.errors import UserError


@dataclass
class MeshFile:
    """What an OFF or PLY file holds: vertices, triangles (None for a bare point cloud), per-vertex properties.
    (The generated primitives use the plainer `data.pointclouds.TriangleMesh`, a (vertices, faces) pair.)"""

    vertices: torch.Tensor  # (nv, 3) float32
    faces: torch.Tensor | None = None  # (nf, 3) int64 triangles
    vertex_props: dict[str, torch.Tensor] = field(default_factory=dict)


def _bad(path, what: str) -> UserError:
    return UserError(f"{path}: {what}")


def _finite(v: torch.Tensor, path) -> torch.Tensor:
    if not torch.isfinite(v).all():
        raise _bad(path, "a vertex coordinate is not a finite float32 number (nan, inf or beyond 3.4e38)")
    return v


def _triangles(polys: list[list[int]], nv: int, path) -> torch.Tensor | None:
    tris = []
    for poly in polys:
        if len(poly) < 3:
            raise _bad(path, f"a face has {len(poly)} vertices (needs at least 3)")
        if min(poly) < 0 or max(poly) >= nv:
            raise _bad(path, f"a face refers to vertex {max(poly) if max(poly) >= nv else min(poly)}, "
                             f"but there are {nv} vertices")
        tris += [(poly[0], poly[i], poly[i + 1]) for i in range(1, len(poly) - 1)]  # fan
    return torch.tensor(tris, dtype=torch.int64).view(-1, 3) if tris else None


# --------------------------------------------------------------------------- OFF

def read_off(path: str | Path) -> MeshFile:
    path = Path(path)
    tokens_by_line = [ln.split("#")[0].split() for ln in _text(path).splitlines()]
    lines = [t for t in tokens_by_line if t]
    if not lines or not lines[0][0].upper().startswith("OFF"):
        raise _bad(path, "not an OFF file (the first line must be 'OFF')")
    first, rest = lines[0], lines[1:]
    head = [first[0][3:]] + first[1:] if first[0][3:] else first[1:]  # ModelNet has lines like 'OFF490 518 0'
    if not head:
        if not rest:
            raise _bad(path, "missing the 'vertices faces edges' count line")
        head, rest = rest[0], rest[1:]
    try:
        nv, nf = int(head[0]), int(head[1])
    except (ValueError, IndexError):
        raise _bad(path, f"the count line should be 'vertices faces edges', got {' '.join(head)!r}") from None
    if nv < 0 or nf < 0:
        raise _bad(path, f"negative counts in the count line {' '.join(head)!r}")
    if len(rest) < nv + nf:
        raise _bad(path, f"declares {nv} vertices and {nf} faces but has only {len(rest)} data lines")
    if any(len(ln) < 3 for ln in rest[:nv]):
        raise _bad(path, "a vertex line has fewer than 3 coordinates")
    try:
        v = torch.tensor([[float(t) for t in ln[:3]] for ln in rest[:nv]], dtype=torch.float32)
        polys = [[int(t) for t in ln[1:1 + int(ln[0])]] for ln in rest[nv:nv + nf]]
    except ValueError as e:
        raise _bad(path, f"a vertex or face line is not numeric ({e})") from None
    for ln, poly in zip(rest[nv:nv + nf], polys):
        if len(poly) != int(ln[0]):
            raise _bad(path, f"a face declares {ln[0]} vertices but lists {len(poly)}")
    return MeshFile(_finite(v.view(-1, 3), path), _triangles(polys, nv, path))


def write_off(path: str | Path, mesh: MeshFile) -> None:
    faces = mesh.faces if mesh.faces is not None else torch.zeros(0, 3, dtype=torch.int64)
    lines = ["OFF", f"{len(mesh.vertices)} {len(faces)} 0"]
    lines += [" ".join(repr(float(c)) for c in p) for p in mesh.vertices.tolist()]
    lines += ["3 " + " ".join(str(i) for i in f) for f in faces.tolist()]
    Path(path).write_text("\n".join(lines) + "\n")


def _text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise _bad(path, "not a text file") from None


# --------------------------------------------------------------------------- PLY

_PLY_TYPES = {"char": "b", "int8": "b", "uchar": "B", "uint8": "B", "short": "h", "int16": "h", "ushort": "H",
              "uint16": "H", "int": "i", "int32": "i", "uint": "I", "uint32": "I", "float": "f", "float32": "f",
              "double": "d", "float64": "d"}


def read_ply(path: str | Path) -> MeshFile:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise _bad(path, "not a PLY file (must start with 'ply' and have an 'end_header' line)")
    nl = data.find(b"\n", end)
    header = data[:end].decode("ascii", errors="replace").splitlines()
    body = data[nl + 1:] if nl >= 0 else b""
    fmt, elements = None, []  # elements: [name, count, [(prop, type, list_count_type)]]
    for ln in header[1:]:
        t = ln.split()
        if not t or t[0] in ("comment", "obj_info"):
            continue
        if t[0] == "format":
            fmt = t[1] if len(t) > 1 else None
        elif t[0] == "element" and len(t) == 3 and t[2].isdigit():
            elements.append([t[1], int(t[2]), []])
        elif t[0] == "property" and elements:
            if t[1] == "list" and len(t) == 5:
                elements[-1][2].append((t[4], t[3], t[2]))
            elif len(t) == 3:
                elements[-1][2].append((t[2], t[1], None))
            else:
                raise _bad(path, f"malformed header line {ln!r}")
        else:
            raise _bad(path, f"malformed header line {ln!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise _bad(path, f"unknown PLY format {fmt!r} (ascii, binary_little_endian or binary_big_endian)")
    for ename, count, props in elements:
        if count and not props:
            raise _bad(path, f"element '{ename}' declares {count} entries but no properties")
        for name, typ, ctype in props:
            if typ not in _PLY_TYPES or (ctype is not None and ctype not in _PLY_TYPES):
                raise _bad(path, f"unknown PLY property type in '{name}'")
    # every entry takes at least one token (ascii: 2 bytes with its separator) or one value's bytes
    least = sum(count * (2 if fmt == "ascii" else len(props)) for _, count, props in elements)
    if least > len(body):
        raise _bad(path, "the file ends before all elements declared in the header")
    values = _ply_ascii(body, elements, path) if fmt == "ascii" else _ply_binary(body, elements, fmt, path)
    if "vertex" not in values:
        raise _bad(path, "has no 'vertex' element")
    vert = values["vertex"]
    kinds = {p: c for name, _, ps in elements if name == "vertex" for p, _, c in ps}
    if not all(k in vert and kinds[k] is None for k in "xyz"):
        raise _bad(path, "the vertex element lacks scalar x, y or z properties")
    with np.errstate(over="ignore"):  # doubles beyond float32 become inf, refused by _finite
        v = _finite(torch.tensor(np.stack([vert["x"], vert["y"], vert["z"]], 1), dtype=torch.float32).view(-1, 3), path)
    props = {k: torch.as_tensor(np.asarray(a)) for k, a in vert.items() if k not in "xyz" and kinds[k] is None}
    faces = None
    if "face" in values:
        face_props = {p: t for name, _, ps in elements if name == "face" for p, t, c in ps if c is not None}
        key = next((k for k in face_props if k in ("vertex_indices", "vertex_index")), None)
        if key is None:
            raise _bad(path, "the face element has no vertex_indices list")
        if _PLY_TYPES[face_props[key]] in "fd":
            raise _bad(path, f"face indices are of type {face_props[key]}; they must be integers")
        faces = _triangles([list(map(int, p)) for p in values["face"][key]], len(v), path)
    return MeshFile(v, faces, props)


def _ply_ascii(body: bytes, elements, path) -> dict:
    tokens = body.decode("ascii", errors="replace").split()
    pos, out = 0, {}
    try:
        for name, count, props in elements:
            cols: dict[str, list] = {p[0]: [] for p in props}
            for _ in range(count):
                for pname, typ, ctype in props:
                    cast = float if _PLY_TYPES[typ] in "fd" else int
                    if ctype is None:
                        cols[pname].append(cast(tokens[pos]))
                        pos += 1
                    else:
                        k = int(tokens[pos])
                        cols[pname].append([cast(t) for t in tokens[pos + 1:pos + 1 + k]])
                        if len(cols[pname][-1]) != k:
                            raise IndexError
                        pos += 1 + k
            out[name] = {p: (cols[p] if c else np.array(cols[p])) for p, _, c in props}
    except IndexError:
        raise _bad(path, "the file ends before all elements declared in the header") from None
    except ValueError as e:
        raise _bad(path, f"a value is not numeric ({e})") from None
    return out


def _ply_binary(body: bytes, elements, fmt: str, path) -> dict:
    order = "<" if fmt == "binary_little_endian" else ">"
    pos, out = 0, {}
    try:
        for name, count, props in elements:
            if all(c is None for _, _, c in props):  # fixed-size records: read all at once
                dtype = np.dtype([(p, order + _PLY_TYPES[t]) for p, t, _ in props])
                arr = np.frombuffer(body, dtype=dtype, count=count, offset=pos)
                pos += dtype.itemsize * count
                out[name] = {p: arr[p].astype(np.float64 if _PLY_TYPES[t] in "fd" else np.int64) for p, t, _ in props}
                continue
            cols: dict[str, list] = {p[0]: [] for p in props}
            for _ in range(count):
                for pname, typ, ctype in props:
                    if ctype is None:
                        f = order + _PLY_TYPES[typ]
                        cols[pname].append(struct.unpack_from(f, body, pos)[0])
                        pos += struct.calcsize(f)
                    else:
                        cf = order + _PLY_TYPES[ctype]
                        k = struct.unpack_from(cf, body, pos)[0]
                        pos += struct.calcsize(cf)
                        if not 0 <= k <= len(body):  # also refuses a float count (nan, inf, 1e30)
                            raise ValueError
                        f = f"{order}{int(k)}{_PLY_TYPES[typ]}"
                        cols[pname].append(list(struct.unpack_from(f, body, pos)))
                        pos += struct.calcsize(f)
            out[name] = cols
    except (ValueError, OverflowError, struct.error):
        raise _bad(path, "the file ends before all elements declared in the header") from None
    return out


def write_ply(path: str | Path, mesh: MeshFile, binary: bool = False) -> None:
    """Vertices (float x, y, z), extra int/float vertex properties, triangle faces (uchar count, int indices)."""
    nv = len(mesh.vertices)
    faces = mesh.faces if mesh.faces is not None else None
    props = [(k, "float" if v.is_floating_point() else "int", v) for k, v in mesh.vertex_props.items()]
    head = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", f"element vertex {nv}",
            "property float x", "property float y", "property float z"]
    head += [f"property {t} {k}" for k, t, _ in props]
    if faces is not None:
        head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    head.append("end_header")
    text = "\n".join(head) + "\n"
    if not binary:
        rows = []
        for i, p in enumerate(mesh.vertices.tolist()):
            extra = [repr(float(v[i])) if t == "float" else str(int(v[i])) for _, t, v in props]
            rows.append(" ".join([repr(c) for c in p] + extra))
        if faces is not None:
            rows += ["3 " + " ".join(map(str, f)) for f in faces.tolist()]
        Path(path).write_text(text + "\n".join(rows) + "\n")
        return
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + [(k, "<f4" if t == "float" else "<i4") for k, t, _ in props])
    rec = np.zeros(nv, dtype=dtype)
    for j, axis in enumerate("xyz"):
        rec[axis] = mesh.vertices[:, j].numpy()
    for k, _, v in props:
        rec[k] = v.numpy()
    blob = text.encode("ascii") + rec.tobytes()
    if faces is not None:
        frec = np.zeros(len(faces), dtype=np.dtype([("n", "u1"), ("i", "<i4", (3,))]))
        frec["n"], frec["i"] = 3, faces.numpy()
        blob += frec.tobytes()
    Path(path).write_bytes(blob)


def read_mesh(path: str | Path) -> MeshFile:
    suffix = Path(path).suffix.lower()
    if suffix == ".off":
        return read_off(path)
    if suffix == ".ply":
        return read_ply(path)
    raise UserError(f"{path}: unsupported file type '{suffix}' (use .off or .ply)")
