import json

import pytest
import torch
from PIL import Image

from deepatlas.data.base import DataConfig
from deepatlas.data.coco import read_coco, write_coco
from deepatlas.data import scenes
from deepatlas.errors import UserError


@pytest.fixture(scope="module")
def small():
    x, b, l, classes = scenes.generate(60, "mixed", "train", seed=3)
    return x, b, l, classes


def test_scenes_boxes_are_exact_and_bands_are_covered(small):
    x, b, l, classes = small
    assert x.shape == (60, 1, 96, 96) and x.min() >= -1 and x.max() <= 1
    valid = l >= 0
    bb = b[valid]
    assert (bb[:, 0] >= 0).all() and (bb[:, 2] <= 96).all() and (bb[:, 2] > bb[:, 0]).all()
    area = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1])
    lo, hi = scenes.area_bands(96)
    assert (lo, hi) == (36.0, 324.0)  # COCO's 32², 96² scaled by 96/512
    for band in (area < lo, (area >= lo) & (area <= hi), area > hi):
        assert band.float().mean() > 0.15  # every size band well represented
    assert set(l[valid].tolist()) <= set(range(len(classes)))


def test_scenes_are_deterministic_and_splits_differ():
    a = scenes.generate(5, "shapes", "train", seed=0)
    b = scenes.generate(5, "shapes", "train", seed=0)
    c = scenes.generate(5, "shapes", "test", seed=0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_unknown_variant_is_a_user_error():
    with pytest.raises(UserError, match="variant"):
        scenes.generate(2, "animals", "train", seed=0)


def test_coco_round_trip(small, tmp_path):
    from deepatlas.data.base import TensorData

    x, b, l, classes = small
    path = write_coco(TensorData(x=x[:10], boxes=b[:10], labels=l[:10]), classes, tmp_path, "test")
    back, names, ids = read_coco(path)
    assert names == classes and ids == list(range(1, len(classes) + 1))
    assert torch.allclose(back["x"], x[:10], atol=1 / 127.5 + 1e-6)  # PNG quantisation only
    m = back["labels"].shape[1]
    for i in range(10):
        keep = l[i] >= 0
        assert torch.equal(back["labels"][i][back["labels"][i] >= 0], l[i][keep])
        assert torch.allclose(back["boxes"][i][: keep.sum()], b[i][keep])
    assert m <= scenes.MAX_OBJECTS


def test_coco_loader_errors(tmp_path):
    from deepatlas.data.coco import load

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load(DataConfig(name="coco", path=str(bad)))
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(UserError, match="not a COCO annotation file"):
        load(DataConfig(name="coco", path=str(bad)))
    bad.write_text(json.dumps({"images": [{"id": 1}], "annotations": [], "categories": []}))
    with pytest.raises(UserError, match="no 'file_name'"):
        load(DataConfig(name="coco", path=str(bad)))
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    image = lambda i, f="a.png": {"id": i, "file_name": f}  # noqa: E731
    ann = lambda box, **kw: {"id": 1, "image_id": 1, "category_id": 1, "bbox": box, **kw}  # noqa: E731
    cases = [  # (document, what the one-line error must say)
        ({"images": [image(1), image(2)], "annotations": [ann([0, 0, float("nan"), 1])], "categories": [{"id": 1}]},
         "finite numbers"),
        ({"images": [image(1), image(2)], "annotations": [ann([0, 0, 1])], "categories": [{"id": 1}]}, "bbox"),
        ({"images": [image(1), image(2)], "annotations": [ann([0, 0, -1, 1])], "categories": [{"id": 1}]}, "negative"),
        ({"images": [image("1"), image(2)], "annotations": [], "categories": [{"id": 1}]}, "ids are integers"),
        ({"images": [image(1), image(1)], "annotations": [], "categories": [{"id": 1}]}, "share an id"),
        ({"images": [image(1)], "annotations": [], "categories": [{"id": 1}]}, "at least 2"),
        ({"images": [image(1, "b.png"), image(2, "b.png")], "annotations": [], "categories": []}, "not a readable image"),
        ({"images": [image(1), image(2)], "annotations": [ann([0, 0, 1, 1], category_id=5)], "categories": [{"id": 1}]},
         "unknown category_id 5"),
    ]
    for doc, match in cases:
        bad.write_text(json.dumps(doc))
        with pytest.raises(UserError, match=match) as e:
            load(DataConfig(name="coco", path=str(bad), seed=1))
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="not found"):
        load(DataConfig(name="coco", path=str(tmp_path / "missing.json")))


def test_cli_train_eval_sample(tmp_path):
    """The whole path: make-scenes -> train a detector on the COCO folder -> eval with a pyramid -> draw."""
    from deepatlas.cli import main

    coco = tmp_path / "coco"
    assert main(["make-scenes", "--out", str(coco), "--size", "24", "--variant", "shapes"]) == 0
    run = tmp_path / "run"
    assert main(["train", "fcos", "--data", "coco", "--data-path", str(coco), "--out", str(run), "--no-progress",
                 "--train-steps", "2", "--train-batch-size", "4", "--model-fpn"]) == 0
    assert main(["eval", str(run), "--n", "6", "--scales", "1", "1.5"]) == 0
    r = json.loads((run / "eval.json").read_text())
    assert {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"} <= set(r) and r["scales"] == [1.0, 1.5]
    results = json.loads((run / "eval" / "coco_results.json").read_text())  # written by eval, COCO results format
    assert all(set(p) == {"image_id", "category_id", "bbox", "score"} for p in results)
    assert main(["sample", str(run), "--n", "4"]) == 0
    assert (run / "samples" / "sample.png").stat().st_size > 1000
    assert main(["eval", str(run), "--scales", "0"]) == 2  # one-line error


def test_fpn_and_trident_together_is_a_user_error():
    from deepatlas.data.base import DataInfo
    from deepatlas.vision.yolo_v1 import YOLOv1

    with pytest.raises(UserError, match="choose one"):
        YOLOv1(YOLOv1.Config(fpn=True, trident=True), DataInfo("scene", (1, 96, 96), 3))
    with pytest.raises(UserError, match="detection data"):
        YOLOv1(YOLOv1.Config(), DataInfo("image", (1, 8, 8), 10))


def test_train_help_lists_detector_options(capsys):
    from deepatlas.cli import main

    assert main(["train", "centernet", "--help"]) == 0  # help texts with '%' must not break argparse
    out = capsys.readouterr().out
    assert "--model-radius-rule" in out and "--model-trident" in out and "--model-test-scales" in out
