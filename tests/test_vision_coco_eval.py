"""COCO files end to end: mixed grey/RGB images, the canvas flag, size bands on original-pixel areas, and
the COCO results JSON written by `evaluate` — scored by pycocotools' COCOeval it gives our AP."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from deepatlas.data.base import DataConfig
from deepatlas.data.coco import load
from deepatlas.errors import UserError

CATS = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 7, "name": "bird"}]  # ids not 1..K
SIZES = [(640, 480, "RGB"), (200, 100, "L"), (300, 500, "RGB"), (96, 96, "L"), (400, 400, "RGB")]


def _write(folder, images, anns, name):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    doc = {"images": [], "annotations": anns, "categories": CATS}
    rng = np.random.default_rng(len(name))
    for iid, (w, h, mode) in images:
        f = f"images/{name}_{iid}.png"
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / f)
        doc["images"].append({"id": iid, "file_name": f, "width": w, "height": h})
    (folder / f"{name}.json").write_text(json.dumps(doc))
    return folder / f"{name}.json"


def _synthetic(folder):
    """5 images of several sizes, 6 objects each over all size bands (original pixels), one crowd region,
    some annotations whose `area` (a segment's) is smaller than the box. Train and test are the same file."""
    rng = np.random.default_rng(0)
    images = [(10 + i, s) for i, s in enumerate(SIZES)]
    anns = []
    for iid, (w, h, _) in images:
        for k in range(6):
            side = float(np.exp(rng.uniform(np.log(12), np.log(min(w, h) * 0.9))))
            bw, bh = side * rng.uniform(0.8, 1.2), side * rng.uniform(0.8, 1.2)
            bw, bh = min(bw, w - 1), min(bh, h - 1)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            a = {"id": len(anns) + 1, "image_id": iid, "category_id": CATS[k % 3]["id"], "bbox": [x, y, bw, bh],
                 "iscrowd": int(k == 5 and iid == 12)}
            a["area"] = 0.6 * bw * bh if k == 4 else bw * bh  # k = 4: a segment's area; the band is taken on it
            anns.append(a)
    _write(folder, images, anns, "train")
    return _write(folder, images, anns, "test"), anns


def _detections(anns, ds):
    """Per test image, detections on the canvas: most objects found with jittered boxes, a few with the
    wrong class, false positives, and one box reaching into the padding (clipped by evaluate)."""
    rng = np.random.default_rng(1)
    test = ds.test
    out = []
    for j in range(len(test)):
        iid, s = int(test["image_id"][j]), float(test["scale"][j])
        boxes, scores, labels = [], [], []
        for a in anns:
            if a["image_id"] != iid or rng.uniform() < 0.15:
                continue
            x, y, w, h = a["bbox"]
            jit = rng.normal(0, 0.08, 4) * [w, h, w, h]
            boxes.append([x + jit[0], y + jit[1], x + w + jit[2], y + h + jit[3]])
            label = [c["id"] for c in CATS].index(a["category_id"])
            labels.append(label if rng.uniform() > 0.1 else (label + 1) % 3)
            scores.append(rng.uniform(0.05, 1))
        W, H = test["size"][j].tolist()
        for _ in range(3):
            bw, bh = rng.uniform(10, W / 2), rng.uniform(10, H / 2)
            x, y = rng.uniform(0, W - bw), rng.uniform(0, H - bh)
            boxes.append([x, y, x + bw, y + bh]), labels.append(int(rng.integers(0, 3))), scores.append(rng.uniform(0, 0.6))
        boxes.append([W * 0.5, H * 0.5, W * 1.3, H * 1.2]), labels.append(0), scores.append(0.5)  # into the padding
        boxes = torch.tensor(boxes, dtype=torch.float64) * s  # original pixels -> canvas
        out.append({"boxes": boxes.float(), "scores": torch.tensor(scores).float(), "labels": torch.tensor(labels)})
    return out


def _evaluate(ds, anns, folder):
    from deepatlas.vision.fcos import FCOS

    det = FCOS(FCOS.Config(), ds.info)
    dets = _detections(anns, ds)
    det.detect = lambda x, *a, **k: dets[: len(x)]
    return det.evaluate(ds, 100, folder=folder)


def test_bands_use_original_areas_whatever_the_canvas(tmp_path):
    _, anns = _synthetic(tmp_path / "coco")
    ds96 = load(DataConfig(name="coco", path=str(tmp_path / "coco")))
    ds160 = load(DataConfig(name="coco", path=str(tmp_path / "coco"), resolution=160))
    assert ds96.info.shape == (3, 96, 96) and ds160.info.shape == (3, 160, 160)  # grey + RGB files -> RGB
    assert ds96.info.extra["area_bands"] == (32.0 ** 2, 96.0 ** 2)
    by_id = {a["id"]: a for a in anns}
    ours = [a["area"] for a in by_id.values()]
    got = ds96.test["area"][ds96.test["labels"] >= 0]
    assert sorted(np.round(got.tolist(), 6)) == sorted(np.round(ours, 6))  # the annotations' areas, not the canvas'
    r96 = _evaluate(ds96, anns, tmp_path / "e96")
    r160 = _evaluate(ds160, anns, tmp_path / "e160")
    for k in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"):
        assert abs(r96[k] - r160[k]) <= 1e-4, (k, r96[k], r160[k])
    assert all(r96[k] not in (-1.0, 0.0, 1.0) for k in ("AP", "AP_small", "AP_medium", "AP_large"))


def test_results_json_scored_by_pycocotools_gives_our_ap(tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_path, anns = _synthetic(tmp_path / "coco")
    ds = load(DataConfig(name="coco", path=str(tmp_path / "coco")))
    ours = _evaluate(ds, anns, tmp_path / "eval")
    results = json.loads((tmp_path / "eval" / "coco_results.json").read_text())
    assert ours["coco_results"] == str(tmp_path / "eval" / "coco_results.json")
    assert {r["category_id"] for r in results} <= {1, 3, 7} and {r["image_id"] for r in results} == {10, 11, 12, 13, 14}
    for r in results:  # original image coordinates, inside the image
        w, h, _ = SIZES[r["image_id"] - 10]
        x, y, bw, bh = r["bbox"]
        assert x >= 0 and y >= 0 and x + bw <= w + 1e-3 and y + bh <= h + 1e-3
    gt = COCO(str(gt_path))
    ev = COCOeval(gt, gt.loadRes(str(tmp_path / "eval" / "coco_results.json")), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    for k, v in zip(("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"), ev.stats[:6]):
        assert abs(ours[k] - v) <= 6e-5, (k, ours[k], v)


def test_grey_train_and_colour_test_get_one_channel_count(tmp_path):
    folder = tmp_path / "c"
    ann = lambda i, iid: {"id": i, "image_id": iid, "category_id": 1, "bbox": [1, 1, 5, 5]}  # noqa: E731
    _write(folder, [(1, (40, 30, "L")), (2, (30, 40, "L"))], [ann(1, 1), ann(2, 2)], "train")
    _write(folder, [(3, (50, 50, "RGB"))], [ann(3, 3)], "test")
    ds = load(DataConfig(name="coco", path=str(folder)))
    assert ds.train["x"].shape[1:] == ds.test["x"].shape[1:] == (3, 96, 96) and ds.info.shape == (3, 96, 96)
    grey = load(DataConfig(name="coco", path=str(folder), channels=1))
    assert grey.train["x"].shape[1] == grey.test["x"].shape[1] == 1
    # the padding is -1 and the picture sits top-left, scaled by 96 / longest side
    assert (ds.train["x"][0, :, 72:, :] == -1).all() and float(ds.train["scale"][0]) == 96 / 40
    with pytest.raises(UserError, match="multiple of 16"):
        load(DataConfig(name="coco", path=str(folder), resolution=100))
