"""PointNet: exact point-order invariance, the T-Net penalty, surface sampling, OFF/PLY files, part mIoU."""

import copy
import math

import pytest
import torch
from torch import nn

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.errors import UserError
from deepatlas.nn.pointnet import PointNetClassifier, PointNetSegmenter, TNet, orthogonality_penalty, shared_mlp
from deepatlas.pointcloud.files import MeshFile, read_mesh, read_off, read_ply, write_off, write_ply
from deepatlas.pointcloud.mesh import face_areas, random_rotation, sample_surface
from deepatlas.pointcloud.part_miou import part_miou


def _randomise_batchnorm(*modules):
    """Eval-mode BatchNorm with non-trivial statistics, so that it takes part in the check."""
    for m in modules:
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
        m.eval()


@pytest.mark.parametrize("n", [64, 257])
def test_outputs_invariant_to_point_order_exactly(n):
    torch.manual_seed(0)
    cls, seg = PointNetClassifier(10, 0.25), PointNetSegmenter(13, 5, 0.25)
    for m in (cls, seg):  # give the T-Nets non-identity outputs
        for t in (m.encoder.input_tnet, m.encoder.feature_tnet):
            torch.nn.init.normal_(t.out.weight, std=0.1)
    _randomise_batchnorm(cls, seg)
    x, y = torch.randn(3, n, 3), torch.tensor([0, 2, 4])
    perm = torch.randperm(n)
    with torch.no_grad():
        assert torch.equal(cls(x)["logits"], cls(x[:, perm])["logits"])
        # segmentation is equivariant: permuting the points permutes the per-point outputs
        assert torch.equal(seg(x, y)["logits"][:, perm], seg(x[:, perm], y)["logits"])


def test_orthogonality_penalty():
    q = torch.linalg.qr(torch.randn(4, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    reflection = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))[None]
    assert torch.allclose(orthogonality_penalty(torch.cat([q, reflection])), torch.zeros(5, dtype=torch.float64), atol=1e-20)
    assert orthogonality_penalty(q + 1e-3).min() > 1e-7
    # ||I - (sI)(sI)^T||^2 = k (1 - s^2)^2
    s, k = 2.0, 5
    assert orthogonality_penalty(s * torch.eye(k)[None]).item() == pytest.approx(k * (1 - s * s) ** 2)


def test_tnet_starts_at_identity():
    t = TNet(7, 0.25).eval()
    assert torch.equal(t(torch.randn(2, 30, 7)), torch.eye(7).expand(2, 7, 7))


@pytest.mark.parametrize("train", [True, False])
def test_points_last_shared_mlp_is_the_conv1d_mlp(train):
    """The shared MLP applied points-last as matmuls against the same modules run as torch runs them,
    Conv1d on (B, C, N) (a peer oracle): outputs, BatchNorm running statistics and weight gradients."""
    torch.manual_seed(0)
    mlp = shared_mlp([5, 12, 9]).double().train(train)
    ref = copy.deepcopy(mlp)
    for bn in (m for m in mlp if isinstance(m, nn.BatchNorm1d)):  # non-trivial running stats for eval mode
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    ref.load_state_dict(mlp.state_dict())
    x = torch.randn(3, 40, 5, dtype=torch.float64)
    y = mlp(x)  # (B, N, C)
    y_ref = nn.Sequential.forward(ref, x.transpose(1, 2)).transpose(1, 2)  # the plain Conv1d path
    assert torch.allclose(y, y_ref, atol=1e-12)
    for a, b in zip(mlp.state_dict().values(), ref.state_dict().values()):
        assert torch.allclose(a.double(), b.double(), atol=1e-12)
    (y * torch.arange(9.0, dtype=torch.float64)).sum().backward()
    (y_ref * torch.arange(9.0, dtype=torch.float64)).sum().backward()
    for p, q in zip(mlp.parameters(), ref.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-10)


def test_segmenter_keeps_the_saved_layout():
    """Runs saved before the points-last change load: the parameters keep their Conv1d names and shapes."""
    m = PointNetSegmenter(num_parts=4, num_classes=3, width=0.25)
    sd = m.state_dict()
    assert sd["head.1.weight"].shape == (4, 32, 1) and sd["encoder.mlp1.0.weight"].shape == (16, 3, 1)
    assert sd["encoder.input_tnet.point.1.running_mean"].shape == (16,)


def test_random_rotation_is_a_rotation():
    for kind in ("so3", "z"):
        r = random_rotation(torch.Generator().manual_seed(1), kind).double()
        assert torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=1e-6)
        assert torch.det(r).item() == pytest.approx(1.0, abs=1e-6)


def test_surface_sampling_is_uniform_by_area():
    # two triangles of areas 1/2 and 3/2 in the plane z = 0
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [3, 0, 0], [0, 3, 0]], dtype=torch.float32)
    f = torch.tensor([[0, 1, 2], [1, 3, 4]])
    assert face_areas(v, f).tolist() == pytest.approx([0.5, 3.0])
    pts, face = sample_surface(v, f, 40000, torch.Generator().manual_seed(0))
    frac = (face == 1).float().mean().item()
    assert frac == pytest.approx(face_areas(v, f)[1].item() / face_areas(v, f).sum().item(), abs=0.01)
    # points lie inside their triangle: barycentric coordinates are non-negative
    first = pts[face == 0]
    assert (first[:, 0] >= -1e-6).all() and (first[:, 1] >= -1e-6).all() and (first[:, :2].sum(1) <= 1 + 1e-6).all()
    # within a triangle the density is uniform: the half x+y < 1/sqrt(2) holds half of the area
    inner = (first[:, :2].sum(1) < 1 / math.sqrt(2)).float().mean().item()
    assert inner == pytest.approx(0.5, abs=0.02)


def _mesh():
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.5]], dtype=torch.float32)
    return MeshFile(v, torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]), {"label": torch.tensor([0, 1, 1, 2])})


def test_off_round_trip(tmp_path):
    m = _mesh()
    write_off(tmp_path / "a.off", m)
    back = read_off(tmp_path / "a.off")
    assert torch.equal(back.vertices, m.vertices) and torch.equal(back.faces, m.faces)
    # quads are fanned into triangles; ModelNet's 'OFF4 1 0' header on one line is accepted
    (tmp_path / "q.off").write_text("OFF4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    assert read_off(tmp_path / "q.off").faces.tolist() == [[0, 1, 2], [0, 2, 3]]


@pytest.mark.parametrize("binary", [False, True])
def test_ply_round_trip(tmp_path, binary):
    m = _mesh()
    write_ply(tmp_path / "a.ply", m, binary=binary)
    back = read_mesh(tmp_path / "a.ply")
    assert torch.equal(back.vertices, m.vertices) and torch.equal(back.faces, m.faces)
    assert back.vertex_props["label"].tolist() == [0, 1, 1, 2]


def test_binary_big_endian_ply(tmp_path):
    import struct

    head = b"ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty double x\nproperty double y\n" \
           b"property double z\nelement face 1\nproperty list uchar uint vertex_indices\nend_header\n"
    body = struct.pack(">9d", 0, 0, 0, 1, 0, 0, 0, 1, 0) + struct.pack(">B3I", 3, 0, 1, 2)
    (tmp_path / "b.ply").write_bytes(head + body)
    m = read_ply(tmp_path / "b.ply")
    assert m.vertices.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]] and m.faces.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("name,text,match", [
    ("a.off", "OF\n", "not an OFF file"),
    ("b.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n", "declares 3 vertices"),
    ("c.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "refers to vertex 7"),
    ("d.off", "OFF\nx y z\n", "count line"),
    ("e.ply", "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n"
              "end_header\n0 0 0\n", "ends before"),
    ("f.ply", "ply\nformat weird 1.0\nend_header\n", "unknown PLY format"),
    ("g.ply", "hello", "not a PLY file"),
    ("h.obj", "v 0 0 0", "unsupported file type"),
    # found by tests/test_data_fuzz.py: each of these hung, crashed or returned NaN before
    ("i.ply", "ply\nformat ascii 1.0\nelement vertex 1000000000000\nend_header\n", "no properties"),
    ("j.ply", "ply\nformat ascii 1.0\nelement vertex 1000000000000\nproperty float x\nend_header\n1\n", "ends before"),
    ("k.off", "OFF\n1 0 0\nnan 0 0\n", "not a finite"),
    ("l.off", "OFF\n1 0 0\n1e400 0 0\n", "not a finite"),
    ("m.off", "OFF\n-1 0 0\n0 0 0\n0 0 1\n", "negative counts"),
    ("n.off", "OFF\n2 0 0\n0 0\n0 0 1\n", "fewer than 3 coordinates"),
    ("o.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
              "element face 1\nproperty list uchar float vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 nan\n",
     "must be integers"),
    ("p.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty list uchar float x\nproperty float y\n"
              "property float z\nend_header\n1 0 0 0\n", "scalar x, y or z"),
])
def test_malformed_files_give_one_line_errors(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=match) as e:
        read_mesh(tmp_path / name)
    assert "\n" not in str(e.value) and name in str(e.value)


def test_binary_list_with_a_huge_count_is_refused_quickly(tmp_path):
    """A face list whose uint count says 4e9 once built a 4-GB struct format string."""
    import struct

    head = b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n" \
           b"property float z\nelement face 1\nproperty list uint int vertex_indices\nend_header\n"
    (tmp_path / "big.ply").write_bytes(head + struct.pack("<9f", *range(9)) + struct.pack("<I", 2**32 - 1) + b"\0" * 12)
    with pytest.raises(UserError, match="ends before"):
        read_ply(tmp_path / "big.ply")


def test_file_clouds_are_finite_even_for_huge_coordinates(tmp_path):
    from deepatlas.data.pointclouds import cloud_from_file

    (tmp_path / "far.off").write_text("OFF\n3 0 0\n3e38 3e38 0\n3e38 -3e38 1\n-3e38 0 2\n")
    x, _ = cloud_from_file(tmp_path / "far.off", 8, torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all() and x.norm(dim=1).max() == pytest.approx(1.0)
    (tmp_path / "neg.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                                      "property float z\nproperty int label\nend_header\n0 0 0 -1\n")
    with pytest.raises(UserError, match="non-negative integers"):
        cloud_from_file(tmp_path / "neg.ply", 8, torch.Generator().manual_seed(0))


def test_part_miou_by_hand():
    class_parts = [[0, 1], [2, 3, 4]]
    true = torch.tensor([[0, 0, 1, 1], [2, 2, 3, 3]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 3, 3]])
    r = part_miou(pred, true, torch.tensor([0, 1]), class_parts)
    # shape 0: IoU(0) = 1/2, IoU(1) = 2/3; shape 1: parts 2, 3 perfect, part 4 absent in both -> 1
    assert r["instance_miou"] == pytest.approx(((0.5 + 2 / 3) / 2 + 1.0) / 2)
    assert r["class_miou"] == pytest.approx(r["instance_miou"])


def test_generated_datasets():
    d = load_dataset(DataConfig(name="shapes3d", size=20, points=64))
    assert d.train["x"].shape == (20, 64, 3) and d.info.num_classes >= 8
    assert sorted(d.train["y"].unique().tolist()) == list(range(10))
    assert d.train["x"].norm(dim=-1).max() < 1.25 * math.sqrt(3) + 0.1
    p = load_dataset(DataConfig(name="parts3d", size=10, points=256))
    parts, y = p.train["parts"], p.train["y"]
    for c, allowed in enumerate(p.info.extra["class_parts"]):  # every point's part belongs to its object
        assert set(parts[y == c].unique().tolist()) == set(allowed)
    with pytest.raises(UserError, match="rotation"):
        load_dataset(DataConfig(name="shapes3d", variant="so4", size=10, points=8))


def test_folder_of_files(tmp_path):
    from deepatlas.data.pointclouds import PRIMITIVES

    g = torch.Generator().manual_seed(0)
    for c in ("cube", "torus"):
        for split in ("train", "test"):
            (tmp_path / c / split).mkdir(parents=True)
            v, f = PRIMITIVES[c](g)
            write_off(tmp_path / c / split / "x.off", MeshFile(v, f))
            write_ply(tmp_path / c / split / "y.ply", MeshFile(v, f), binary=True)
    d = load_dataset(DataConfig(name="pointcloud-files", path=str(tmp_path), points=128))
    assert d.train["x"].shape == (4, 128, 3) and d.train["y"].tolist() == [0, 0, 1, 1]
    with pytest.raises(UserError, match="data-path"):
        load_dataset(DataConfig(name="pointcloud-files", path=str(tmp_path / "nope")))


@pytest.mark.parametrize("method,data", [("pointnet", "shapes3d"), ("pointnet-seg", "parts3d")])
def test_methods_train_and_evaluate(tmp_path, method, data):
    from deepatlas.registry import get
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    d = load_dataset(DataConfig(name=data, size=40, points=64))
    spec = get("method", method).obj
    m = spec(spec.Config(width=0.125), d.info)
    last = fit(m, d, TrainConfig(steps=30, batch_size=8, lr=3e-3, warmup=5, log_every=10, ckpt_every=30), tmp_path,
               progress=False)
    assert math.isfinite(last["loss"])
    r = m.evaluate(d, 20)
    key = "accuracy" if method == "pointnet" else "instance_miou"
    assert 0.0 <= r[key] <= 1.0 and r["n"] == min(20, len(d.test))


def test_cli_train_then_eval(tmp_path, capsys):
    import json

    from deepatlas.cli import main

    out = str(tmp_path / "run")
    assert main(["train", "pointnet-seg", "--data", "parts3d", "--data-size", "10", "--data-points", "32",
                 "--model-width", "0.125", "--train-steps", "3", "--train-batch-size", "4", "--out", out,
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", out, "--n", "5"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["step"] == 3 and 0 <= r["instance_miou"] <= 1 and r["n"] == 5
