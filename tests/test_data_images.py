"""The `images` dataset: a folder of the user's own PNG/JPEG files -> (N, C, R, R) in [-1, 1], labels from
class subfolders, one channel count, a fixed split, and one-line errors for what can go wrong."""

import numpy as np
import pytest
import torch
from PIL import Image

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.data.image_files import fit_square, letterbox, to_tensor
from deepatlas.errors import UserError
from tests import image_folders as F


def _load(path, **kw):
    return load_dataset(DataConfig(name="images", path=str(path), **kw))


def _all(ds, key):
    return torch.cat([ds.train[key], ds.test[key]])


def test_labelled_folder_mixed_grey_and_rgb(tmp_path):
    root = F.labelled(tmp_path / "pets")
    ds = _load(root, resolution=16)
    assert ds.info.kind == "image" and ds.info.shape == (3, 16, 16)  # one colour picture makes the folder RGB
    assert ds.info.num_classes == 2 and ds.info.extra["classes"] == ("cat", "dog")
    assert len(ds.train) + len(ds.test) == 8 and len(ds.test) == round(0.2 * 8)  # .txt and .thumbnails left alone
    x, y = _all(ds, "x"), _all(ds, "y")
    assert x.min() >= -1 and x.max() <= 1
    # every picture is constant: grey ones repeat their value on the 3 channels, colour ones keep theirs
    per_image = x.flatten(2)
    assert torch.allclose(per_image, per_image[..., :1].expand_as(per_image), atol=2 / 255)
    v = (per_image[..., 0] + 1) * 127.5  # (N, 3) values 0..255
    cats, dogs = v[y == 0], v[y == 1]
    assert len(cats) == 4 and len(dogs) == 4
    assert torch.allclose(cats[:, 0], cats[:, 1]) and torch.allclose(cats[:, 1], cats[:, 2])
    assert sorted(round(c) for c in cats[:, 0].tolist()) == [10, 20, 30, 40]
    assert (dogs[:, 0] > 195).all() and (dogs[:, 1] < 5).all() and (abs(dogs[:, 2] - 50) < 5).all()  # JPEG within 5


def test_split_is_fixed_disjoint_and_complete(tmp_path):
    root = F.flat(tmp_path / "f", n=10)
    a, b = _load(root), _load(root)
    assert torch.equal(a.train["x"], b.train["x"]) and torch.equal(a.test["x"], b.test["x"])
    values = lambda split: sorted(round(((v + 1) * 127.5).item()) for v in split["x"][:, 0, 0, 0])  # noqa: E731
    tr, te = values(a.train), values(a.test)
    assert not set(tr) & set(te) and sorted(tr + te) == [20 * (i + 1) for i in range(10)]
    c = _load(root, seed=1)
    assert values(c.test) != te  # another seed, another split
    assert len(_load(root, size=3).train) == 3


def test_flat_folder_is_unlabelled_grey(tmp_path):
    ds = _load(F.flat(tmp_path / "f"), resolution=32)
    assert ds.info.shape == (1, 32, 32) and ds.info.num_classes == 0 and "y" not in ds.train.tensors
    assert ds.info.extra["labelled"] is False


def test_forced_channels(tmp_path):
    root = F.labelled(tmp_path / "pets")
    grey = _load(root, channels=1)
    assert grey.info.shape == (1, 32, 32)
    dogs = _all(grey, "x")[_all(grey, "y") == 1]
    # Pillow's ITU-R 601 luma of (R, 0, 50): 0.299 R + 0.114 * 50, R in 200..230
    luma = ((dogs.flatten(1).mean(1) + 1) * 127.5)
    assert ((luma > 0.299 * 195 + 5.7 - 2) & (luma < 0.299 * 235 + 5.7 + 2)).all()
    flat3 = _load(F.flat(tmp_path / "f"), channels=3)
    assert flat3.info.shape == (3, 32, 32) and torch.equal(flat3.train["x"][:, 0], flat3.train["x"][:, 2])


def test_sixteen_bit_and_palette_pictures(tmp_path):
    root = tmp_path / "deep"
    root.mkdir()
    for i, v in enumerate((0, 16384, 32768, 49152, 65535)):
        Image.fromarray(np.full((9, 9), v, np.uint16)).save(root / f"g{i}.png")
    ds = _load(root, resolution=8)
    assert ds.info.shape == (1, 8, 8)
    got = sorted(round(((v + 1) / 2).item(), 3) for v in _all(ds, "x")[:, 0, 0, 0])
    assert got == [round(v / 65535, 3) for v in (0, 16384, 32768, 49152, 65535)]
    pal = Image.new("P", (8, 8))
    pal.putpalette([v for g in range(256) for v in (g, g, g)])  # a grey palette
    pal.save(root / "p.png")
    assert _load(root, resolution=8).info.shape == (1, 8, 8)  # a grey palette stays grey


def test_fit_square_keeps_the_centre_and_letterbox_the_whole():
    # a 32x64 (H x W) picture whose middle 32 columns are white: shorter side already 32, the crop is them
    t = torch.zeros(1, 32, 64)
    t[:, :, 16:48] = 1
    assert torch.equal(fit_square(t, 32), torch.ones(1, 32, 32))
    portrait = torch.zeros(1, 64, 32)
    portrait[:, 16:48] = 1
    assert torch.equal(fit_square(portrait, 32), torch.ones(1, 32, 32))
    box, s = letterbox(torch.ones(1, 50, 100), 96, fill=-1)
    assert s == 0.96 and torch.allclose(box[:, :48], torch.ones(1, 48, 96)) and (box[:, 48:] == -1).all()
    assert torch.allclose(fit_square(torch.full((3, 40, 25), 0.25), 16), torch.full((3, 16, 16), 0.25))


def test_to_tensor_values():
    im = Image.fromarray(np.array([[0, 255]], np.uint8))
    assert to_tensor(im, 1).tolist() == [[[0.0, 1.0]]]
    assert to_tensor(im, 3).shape == (3, 1, 2)


def test_errors_are_one_line(tmp_path):
    cases = []
    cases.append((dict(path=str(tmp_path / "nowhere")), "not found"))
    cases.append((dict(path=""), "needs --data-path"))
    (tmp_path / "file.png").write_bytes(b"x")
    cases.append((dict(path=str(tmp_path / "file.png")), "is a file"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    cases.append((dict(path=str(empty)), r"no images found; deepatlas reads .*\.png, \.jpg, \.jpeg"))
    few = F.flat(tmp_path / "few", n=3)
    cases.append((dict(path=str(few)), "3 image.*at least 5"))
    both = F.flat(tmp_path / "both", n=5)
    F.grey(both / "cls" / "a.png", 3)
    cases.append((dict(path=str(both)), "both directly"))
    corrupt = F.flat(tmp_path / "corrupt", n=5)
    (corrupt / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cases.append((dict(path=str(corrupt)), r"broken\.png: not a readable image"))
    trunc = F.flat(tmp_path / "trunc", n=5)
    F.rgb(trunc / "t.jpg", (1, 2, 3), size=(64, 64))
    data = (trunc / "t.jpg").read_bytes()
    (trunc / "t.jpg").write_bytes(data[: len(data) // 2])
    cases.append((dict(path=str(trunc)), r"t\.jpg: not a readable image"))
    cases.append((dict(path=str(F.flat(tmp_path / "ok"))), None))
    for kw, match in cases:
        if match is None:
            with pytest.raises(UserError, match="at least 4"):
                _load(kw["path"], resolution=2)
            continue
        with pytest.raises(UserError, match=match) as e:
            _load(**kw)
        assert "\n" not in str(e.value)


def test_names_differ_per_folder_and_resolution(tmp_path):
    a, b = F.flat(tmp_path / "a"), F.flat(tmp_path / "b", n=9)
    assert _load(a).name != _load(b).name != _load(b, resolution=16).name
    assert _load(a).name.startswith("images-a-")
