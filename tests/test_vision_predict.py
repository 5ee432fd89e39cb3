"""`deepatlas predict RUN IMAGE...`: a detector trained 2 steps on scenes, run on picture files the test
writes (colour and grey, other sizes than the canvas): boxes mapped back to the files' pixels, PNGs with a
legend, COCO results JSON, one-line errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepatlas.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    out = root / "run"
    assert main(["train", "fcos", "--data", "scenes", "--data-variant", "shapes", "--data-size", "8", "--out", str(out),
                 "--no-progress", "--train-steps", "2", "--train-batch-size", "4"]) == 0
    return out


def _pictures(folder):
    folder.mkdir(exist_ok=True)
    a = folder / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 240, 3), dtype=np.uint8), "RGB").save(a)
    b = folder / "square.jpg"
    Image.fromarray(np.full((48, 48), 200, np.uint8), "L").save(b)
    return a, b


def test_predict_maps_boxes_back_and_writes_pictures_and_json(run, tmp_path, capsys, monkeypatch):
    from deepatlas.vision.detector import Detector

    a, b = _pictures(tmp_path / "pics")
    seen = []

    def detect(self, x, scales=None):  # a known box on the canvas for every picture
        seen.append(x.clone())
        box = torch.tensor([[12.0, 6.0, 48.0, 30.0], [90.0, 90.0, 96.0, 96.0]])
        return [{"boxes": box, "scores": torch.tensor([0.9, 0.2]), "labels": torch.tensor([1, 0])} for _ in x]

    monkeypatch.setattr(Detector, "detect", detect)
    out = tmp_path / "out"
    assert main(["predict", str(run), str(a), str(b), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    x = seen[0]
    assert x.shape == (2, 1, 96, 96)  # the run's grey 96-pixel canvas; the colour file made grey
    assert (x[0, :, 32:, :] == -1).all() and (x[0, :, :32] > -1).any()  # 240x80 letterboxed to 96x32, top-left
    assert torch.allclose(x[1], torch.full((1, 96, 96), 200 / 127.5 - 1), atol=2 / 127.5)  # 48 -> 96, JPEG grey
    preds = json.loads((out / "predictions.json").read_text())
    images = json.loads((out / "images.json").read_text())
    assert [(e["id"], e["width"], e["height"]) for e in images] == [(1, 240, 80), (2, 48, 48)]
    by_image = {i: [p for p in preds if p["image_id"] == i] for i in (1, 2)}
    s1, s2 = 96 / 240, 96 / 48
    first = by_image[1][0]
    assert first["category_id"] == 2 and first["score"] == pytest.approx(0.9)
    assert first["bbox"] == pytest.approx([12 / s1, 6 / s1, 36 / s1, 24 / s1])  # original pixels
    clipped = by_image[1][1]["bbox"]  # the box in the padding is clipped to the picture (y beyond 80 rows)
    assert clipped[1] == pytest.approx(80) and clipped[3] == pytest.approx(0)
    assert by_image[2][0]["bbox"] == pytest.approx([6, 3, 18, 12])
    png = Image.open(out / "wide.png")
    assert png.width == 240 * 2 and png.height > 80 * 2  # drawn at 2x (small picture) plus the legend strip
    assert Image.open(out / "square.png").width == 48 * 6


def test_predict_with_the_real_detector_defaults_to_run_predict(run, tmp_path, capsys):
    a, b = _pictures(tmp_path / "pics")
    assert main(["predict", str(run), str(a), str(b)]) == 0
    assert (run / "predict" / "wide.png").exists() and (run / "predict" / "square.png").exists()
    preds = json.loads((run / "predict" / "predictions.json").read_text())
    for p in preds:
        assert set(p) == {"image_id", "category_id", "bbox", "score"} and p["bbox"][2] >= 0


def _one_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("deepatlas: error: "), err
    return err


def test_predict_errors(run, tmp_path, capsys):
    a, _ = _pictures(tmp_path / "pics")
    assert main(["predict", str(run), str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in _one_line(capsys)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    assert main(["predict", str(run), str(a), str(bad)]) == 2
    assert "bad.jpg: not a readable image" in _one_line(capsys)
    other = tmp_path / "vae-run"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"method": "vae", "data": {}, "model": {}, "train": {}}))
    assert main(["predict", str(other), str(a)]) == 2
    assert "not a detector" in _one_line(capsys)
    assert main(["predict", str(run), str(a), "--min-score", "2"]) == 2
    assert "--min-score" in _one_line(capsys)
