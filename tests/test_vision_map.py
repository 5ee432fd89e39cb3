import numpy as np
import pytest

from deepatlas.vision.map import ImageDetections, ImageTruth, coco_map


def _scene(rng, n_img=25, n_cls=3, size=200.0):
    """Random ground truth (some crowd) and noisy, partly wrong detections of it, all boxes as xywh
    floats on a 1/8 grid so that x0 + w is exact in both implementations."""
    gts, dets = [], []
    for _ in range(n_img):
        g = int(rng.integers(0, 7))
        xy = np.round(rng.uniform(0, size, (g, 2)) * 8) / 8
        wh = np.round(np.exp(rng.uniform(np.log(4), np.log(150), (g, 2))) * 8) / 8
        lab = rng.integers(0, n_cls, g)
        crowd = rng.random(g) < 0.08
        gts.append((np.concatenate([xy, wh], 1), lab, crowd))
        d = int(rng.integers(0, 12))
        src = rng.integers(0, max(g, 1), d)
        if g:
            jitter = np.round(rng.normal(0, 0.12, (d, 4)) * wh[src][:, [0, 1, 0, 1]] * 8) / 8
            db = np.concatenate([xy[src], wh[src]], 1) + jitter
            db[:, 2:] = np.maximum(db[:, 2:], 1)
            dl = np.where(rng.random(d) < 0.8, lab[src], rng.integers(0, n_cls, d))
        else:
            db = np.concatenate([rng.uniform(0, size, (d, 2)), rng.uniform(5, 50, (d, 2))], 1).round(3)
            dl = rng.integers(0, n_cls, d)
        dets.append((db, rng.random(d).round(4), dl))
    return gts, dets


def _ours(gts, dets, n_cls, bands=(32.0 ** 2, 96.0 ** 2)):
    to_xyxy = lambda b: np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    T = [ImageTruth(to_xyxy(b), l, c, b[:, 2] * b[:, 3]) for b, l, c in gts]
    D = [ImageDetections(to_xyxy(b), s, l) for b, s, l in dets]
    return coco_map(D, T, n_cls, bands)


def _pycocotools(gts, dets, n_cls):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i + 1, "width": 300, "height": 300} for i in range(len(gts))]
    anns, results = [], []
    for i, (b, l, c) in enumerate(gts):
        for k in range(len(b)):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(l[k]) + 1,
                         "bbox": [float(v) for v in b[k]], "area": float(b[k, 2] * b[k, 3]), "iscrowd": int(c[k])})
    for i, (b, s, l) in enumerate(dets):
        for k in range(len(b)):
            results.append({"image_id": i + 1, "category_id": int(l[k]) + 1, "bbox": [float(v) for v in b[k]],
                            "score": float(s[k])})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c + 1} for c in range(n_cls)]}
    gt.createIndex()
    dt = gt.loadRes(results) if results else COCO()
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return dict(zip(["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"], ev.stats[:6]))


@pytest.mark.parametrize("seed", range(3))
def test_agrees_with_pycocotools(seed):
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(seed)
    gts, dets = _scene(rng)
    ours, theirs = _ours(gts, dets, 3), _pycocotools(gts, dets, 3)
    for k in ours:
        assert ours[k] == pytest.approx(theirs[k], abs=1e-9), k


def test_perfect_detections_score_one():
    rng = np.random.default_rng(5)
    gts, _ = _scene(rng)
    gts = [(b, l, np.zeros_like(c)) for b, l, c in gts]
    dets = [(b.copy(), np.linspace(1, 0.5, len(b)), l.copy()) for b, l, c in gts]
    r = _ours(gts, dets, 3)
    assert r["AP"] == pytest.approx(1.0) and r["AP_small"] == pytest.approx(1.0)


def test_hand_computed_ap():
    # one class, 2 ground-truth boxes; detections: hit (0.9), miss (0.8), hit (0.7)
    # precision at recall 0.5 is 1, at recall 1 it is 2/3 -> AP50 = (51*1 + 50*2/3)/101
    g = ImageTruth(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), np.array([0, 0]))
    d = ImageDetections(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], float),
                        np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))
    r = coco_map([d], [g], 1)
    assert r["AP50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert r["AP_medium"] == -1.0 and r["AP_large"] == -1.0  # no ground truth in those bands
