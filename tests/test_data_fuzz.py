"""Fuzzing the parsers of the data files a user points --data-path at: text corpora, COCO JSON
annotation files (with their images), OFF and PLY meshes. Property: a well-formed dataset (finite
pixels and boxes, token ids inside the vocabulary, finite unit-ball point clouds) or a one-line
UserError; never another exception.

Each parser gets random bytes, structured cases (a plausible header or document with random fields)
and valid files with random byte edits. Short runs in the default suite, DEEPATLAS_FUZZ_CASES with -m slow.
"""

import json
import tempfile
from pathlib import Path

import torch
from fuzzing import JSON, REFUSED, edits, one_line, run_both, tmpfile
from hypothesis import strategies as st
from PIL import Image

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.data.pointclouds import cloud_from_file
from deepatlas.pointcloud.files import MeshFile, write_off, write_ply

# --- text corpora ---------------------------------------------------------------------------------

WORDS = "def class return the of a and to in is it for\n\n  \t é 漢 😀 \x00 \r\n".split(" ")


def _text_case(data) -> bytes:
    kind = data.draw(st.sampled_from(["random", "unicode", "words", "edited"]))
    if kind == "random":
        return data.draw(st.binary(max_size=400))
    if kind == "unicode":
        return data.draw(st.text(max_size=400)).encode("utf-8", errors="surrogatepass")
    words = " ".join(data.draw(st.lists(st.sampled_from(WORDS), max_size=300))).encode()
    return edits(data, words) if kind == "edited" else words


def check_text(data):
    raw = _text_case(data)
    bpe = data.draw(st.booleans())
    cfg = DataConfig(name="text", seq_len=data.draw(st.integers(1, 40)), tokenizer="bpe" if bpe else "char",
                     vocab_size=data.draw(st.integers(8, 300)))
    d, p = tmpfile(raw, "corpus.txt")
    with d:
        cfg.path = str(p)
        ds = one_line(load_dataset, cfg)
    if ds is REFUSED:
        return
    vocab = ds.info.extra["vocab_size"]
    for split in (ds.train, ds.val, ds.test):
        x = split["x"]
        assert x.dtype == torch.int64 and x.shape[1] == cfg.seq_len and len(x) > 0
        assert 0 <= int(x.min()) and int(x.max()) < vocab


test_fuzz_text, test_fuzz_text_slow = run_both(check_text)


# --- COCO JSON --------------------------------------------------------------------------------------

def _valid_coco() -> dict:
    images = [{"id": i, "file_name": f"images/im{i % 2}.png", "width": 12, "height": 10} for i in range(1, 6)]
    anns = [{"id": k, "image_id": 1 + k % 5, "category_id": 1 + k % 2, "bbox": [1.0, 2.0, 3.0 + k, 4.0],
             "area": 12.0, "iscrowd": 0} for k in range(1, 8)]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def _replace_somewhere(data, doc, value):
    """Put `value` at a random place of the nested dict/list `doc` (a field, an entry or a whole list)."""
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        k = data.draw(st.sampled_from(keys))
        child = node[k]
        if not isinstance(child, (dict, list)) or not child or data.draw(st.integers(0, 2)) == 0:
            node[k] = value
            return
        node = child


def _random_coco(data) -> dict:
    """A well-formed document with random sizes, ids and boxes (extreme but finite numbers included)."""
    cat_ids = data.draw(st.lists(st.integers(-5, 2**40), min_size=1, max_size=4, unique=True))
    n = data.draw(st.integers(2, 6))
    images = [{"id": i, "file_name": data.draw(st.sampled_from(["images/im0.png", "im1.png", "images/im1.png"]))}
              for i in range(n)]
    size = st.floats(0, 1e30, allow_nan=False) | st.integers(0, 200)
    anns = [{"image_id": data.draw(st.integers(0, n - 1)), "category_id": data.draw(st.sampled_from(cat_ids)),
             "bbox": [data.draw(st.floats(-1e30, 1e30) | st.integers(-50, 200)), data.draw(st.integers(-50, 200)),
                      data.draw(size), data.draw(size)], "iscrowd": data.draw(st.sampled_from([0, 1, True]))}
            for _ in range(data.draw(st.integers(0, 8)))]
    return {"images": images, "annotations": anns, "categories": [{"id": c, "name": str(c)} for c in cat_ids]}


def _coco_case(data) -> bytes:
    kind = data.draw(st.sampled_from(["random", "json", "valid", "replaced", "edited"]))
    if kind == "valid":
        return json.dumps(_random_coco(data)).encode()
    if kind == "random":
        return data.draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(data.draw(JSON)).encode()
    doc = _valid_coco()
    if kind == "replaced":
        for _ in range(data.draw(st.integers(1, 3))):
            value = data.draw(JSON | st.sampled_from([[], "images/missing.png", "corpus.json", 10**30, -1, 0,
                                                      float("nan"), float("inf"), [1, 2], [0, 0, -5, 3]]))
            _replace_somewhere(data, doc, value)
        return json.dumps(doc).encode()
    return edits(data, json.dumps(doc).encode())


def _coco_folder() -> tuple[tempfile.TemporaryDirectory, Path]:
    d = tempfile.TemporaryDirectory()
    (Path(d.name) / "images").mkdir()
    Image.new("L", (12, 10), 128).save(Path(d.name) / "images" / "im0.png")
    Image.new("RGB", (7, 9), (10, 200, 30)).save(Path(d.name) / "images" / "im1.png")
    (Path(d.name) / "images" / "notapng.png").write_bytes(b"\x89PNG broken")
    return d, Path(d.name)


def check_coco(data):
    raw = _coco_case(data)
    d, folder = _coco_folder()
    with d:
        (folder / "corpus.json").write_bytes(raw)
        ds = one_line(load_dataset, DataConfig(name="coco", path=str(folder / "corpus.json")))
    if ds is REFUSED:
        return
    for split in (ds.train, ds.test):
        assert len(split) > 0 and torch.isfinite(split["x"]).all() and torch.isfinite(split["boxes"]).all()
        labels = split["labels"]
        assert ((labels >= -1) & (labels < ds.info.num_classes)).all()


test_fuzz_coco, test_fuzz_coco_slow = run_both(check_coco)


# --- OFF and PLY meshes -----------------------------------------------------------------------------

TOKENS = ["0", "1", "2", "3", "-1", "0.5", "1e3", "nan", "inf", "-inf", "1e400", "x", "4294967295", "99999999999"]
PLY_TYPES = ["char", "uchar", "short", "ushort", "int", "uint", "float", "double", "int8", "float32", "bogus"]


def _mesh() -> MeshFile:
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.5]])
    return MeshFile(v, torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]), {"label": torch.tensor([0, 1, 1, 2])})


def _file_bytes(writer, suffix: str, **kw) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"m{suffix}"
        writer(p, _mesh(), **kw)
        return p.read_bytes()


VALID = {".off": _file_bytes(write_off, ".off"), ".ply": _file_bytes(write_ply, ".ply"),
         ".ply-binary": _file_bytes(write_ply, ".ply", binary=True)}


def _lines(data, max_lines: int = 12) -> str:
    rows = data.draw(st.lists(st.lists(st.sampled_from(TOKENS), max_size=6), max_size=max_lines))
    return "\n".join(" ".join(r) for r in rows)


def _ply_header(data) -> str:
    fmt = data.draw(st.sampled_from(["ascii", "binary_little_endian", "binary_big_endian", "weird"]))
    lines = ["ply", f"format {fmt} 1.0"]
    for name in data.draw(st.lists(st.sampled_from(["vertex", "face", "edge"]), max_size=3)):
        lines.append(f"element {name} {data.draw(st.sampled_from([0, 1, 2, 3, 4, 2**31, 10**12]))}")
        for _ in range(data.draw(st.integers(0, 4))):
            if data.draw(st.booleans()):
                prop = data.draw(st.sampled_from(["x", "y", "z", "label"]))
                lines.append(f"property {data.draw(st.sampled_from(PLY_TYPES))} {prop}")
            else:
                lines.append(f"property list {data.draw(st.sampled_from(PLY_TYPES))} "
                             f"{data.draw(st.sampled_from(PLY_TYPES))} vertex_indices")
    return "\n".join(lines + ["end_header"]) + "\n"


def _random_mesh_file(data, suffix: str) -> bytes:
    """A well-formed OFF or PLY file of a random mesh: any float32 coordinates, faces or a bare cloud, labels."""
    nv = data.draw(st.integers(1, 8))
    coord = st.floats(width=32, allow_nan=False, allow_infinity=False)
    v = torch.tensor(data.draw(st.lists(st.tuples(coord, coord, coord), min_size=nv, max_size=nv)))
    faces = data.draw(st.lists(st.tuples(*[st.integers(0, nv - 1)] * 3), max_size=6))
    f = torch.tensor(faces, dtype=torch.int64).view(-1, 3) if faces and data.draw(st.booleans()) else None
    props = {"label": torch.tensor(data.draw(st.lists(st.integers(0, 5), min_size=nv, max_size=nv)))} \
        if suffix == ".ply" and data.draw(st.booleans()) else {}
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"m{suffix}"
        if suffix == ".off":
            write_off(p, MeshFile(v, f))
        else:
            write_ply(p, MeshFile(v, f, props), binary=data.draw(st.booleans()))
        return p.read_bytes()


def _mesh_case(data) -> tuple[bytes, str]:
    suffix = data.draw(st.sampled_from([".off", ".ply"]))
    kind = data.draw(st.sampled_from(["random", "structured", "valid", "edited"]))
    if kind == "valid":
        return _random_mesh_file(data, suffix), suffix
    if kind == "random":
        return data.draw(st.binary(max_size=200)), suffix
    if kind == "edited":
        key = suffix if suffix == ".off" else data.draw(st.sampled_from([".ply", ".ply-binary"]))
        return edits(data, VALID[key]), suffix
    if suffix == ".off":
        counts = " ".join(data.draw(st.lists(st.sampled_from(TOKENS), max_size=4)))
        return f"OFF\n{counts}\n{_lines(data)}\n".encode(), suffix
    body = _lines(data).encode() if data.draw(st.booleans()) else data.draw(st.binary(max_size=120))
    return _ply_header(data).encode() + body, suffix


def check_mesh(data):
    raw, suffix = _mesh_case(data)
    d, p = tmpfile(raw, "shape" + suffix)
    with d:
        out = one_line(cloud_from_file, p, 16, torch.Generator().manual_seed(0))
    if out is REFUSED:
        return
    x, labels = out
    assert x.shape == (16, 3) and torch.isfinite(x).all() and float(x.norm(dim=1).max()) <= 1 + 1e-5
    assert labels is None or labels.shape == (16,)


test_fuzz_mesh, test_fuzz_mesh_slow = run_both(check_mesh)
