import math

import pytest
import torch

from deepatlas.data.base import DataInfo
from deepatlas.vision import fcos_targets as FT
from deepatlas.vision import heatmap_targets as HT
from deepatlas.vision.centernet import CenterNet
from deepatlas.vision.fcos import FCOS
from deepatlas.vision.focal_losses import focal_loss, penalty_reduced_focal
from deepatlas.vision.yolo_grid import cell_targets
from deepatlas.vision.boxes import box_iou
from deepatlas.vision.detector import Level
from deepatlas.vision.yolo_v1 import YOLOv1

INFO = DataInfo("scene", (1, 96, 96), 3, {"classes": ["a", "b", "c"], "area_bands": (36.0, 324.0)})


# --- CenterNet ------------------------------------------------------------------------------------

@pytest.mark.parametrize("h,w,t", [(10, 10, 0.7), (4, 20, 0.7), (3.5, 7.25, 0.5), (40, 13, 0.9)])
def test_gaussian_radius_keeps_iou_exactly_at_threshold(h, w, t):
    r = HT.gaussian_radius(h, w, t)
    one_in_one_out = (h - r) * (w - r) / (2 * h * w - (h - r) * (w - r))
    both_in = (h - 2 * r) * (w - 2 * r) / (h * w)
    both_out = h * w / ((h + 2 * r) * (w + 2 * r))
    ious = [one_in_one_out, both_in, both_out]
    assert min(ious) == pytest.approx(t, abs=1e-9)  # the binding case sits exactly at t
    assert all(v >= t - 1e-9 for v in ious)


def test_gaussian_splat_peak_and_width():
    heat = torch.zeros(15, 15)
    HT.draw_gaussian(heat, 7, 5, radius=3)
    assert heat[5, 7] == 1 and heat.argmax() == 5 * 15 + 7
    sigma = 7 / 6
    assert heat[5, 8].item() == pytest.approx(math.exp(-1 / (2 * sigma ** 2)), rel=1e-6)
    assert heat[5, 11] == 0  # cut at the radius
    assert torch.allclose(heat[5, 7:11], heat[5, 4:8].flip(0))


def test_peaks_without_nms():
    heat = torch.zeros(1, 2, 8, 8)
    heat[0, 0, 2, 2], heat[0, 0, 2, 3] = 0.9, 0.8  # 0.8 is beside a higher cell: not a peak
    heat[0, 0, 2, 5] = 0.7  # two cells away: a peak of its own, kept although its box may overlap
    heat[0, 1, 6, 1] = 0.6
    scores, cls, ys, xs = HT.peaks(heat, 3)
    assert scores[0].tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert list(zip(cls[0].tolist(), ys[0].tolist(), xs[0].tolist())) == [(0, 2, 2), (0, 2, 5), (1, 6, 1)]


def test_centernet_decode_inverts_targets():
    m = CenterNet(CenterNet.Config(), INFO)
    box = torch.tensor([13.0, 21.0, 37.0, 30.0])
    out = {"heat": torch.full((1, 3, 24, 24), -10.0), "offset": torch.zeros(1, 2, 24, 24), "size": torch.zeros(1, 2, 24, 24)}
    c = (box[:2] + box[2:]) / 2 / 4
    px, py = int(c[0]), int(c[1])
    out["heat"][0, 2, py, px] = 10.0
    out["offset"][0, :, py, px] = c - torch.tensor([px, py])
    out["size"][0, :, py, px] = (box[2:] - box[:2]) / 4
    d = m.decode(out, Level(torch.zeros(1), 4, 0))[0]
    assert d["labels"][0] == 2 and torch.allclose(d["boxes"][0], box, atol=1e-5)


def test_centernet_l1_losses_are_divided_by_2n():
    """Zero offset/size predictions: the L1 losses are the sums of |target| over both coordinates / (2N)."""
    m = CenterNet(CenterNet.Config(), INFO)
    boxes = torch.tensor([[[13.0, 21.0, 37.0, 30.0], [50.0, 50.0, 61.0, 90.0]], [[2.0, 3.0, 9.0, 8.0], [0, 0, 0, 0]]])
    labels = torch.tensor([[0, 2], [1, -1]])
    out = {"heat": torch.zeros(2, 3, 24, 24), "offset": torch.zeros(2, 2, 24, 24), "size": torch.zeros(2, 2, 24, 24)}
    res = m.level_loss(out, Level(torch.zeros(1), 4, 0), boxes, labels)
    real = boxes[labels >= 0] / 4  # (N = 3, 4) in cells
    c = (real[:, :2] + real[:, 2:]) / 2
    assert res["offset"].item() == pytest.approx((c - c.floor()).sum().item() / 6, rel=1e-6)
    assert res["size"].item() == pytest.approx((real[:, 2:] - real[:, :2]).sum().item() / 6, rel=1e-6)


def test_centernet_radius_uses_ceiled_box_size():
    """A 12.1-cell square: r(12.1) = 0.99 floors to 0 (a single-cell peak), r(ceil 12.1 = 13) = 1.06 to 1,
    so the splat covers 3x3 cells, as in the reference (radius from ceil(h), ceil(w))."""
    assert int(HT.gaussian_radius(12.1, 12.1)) == 0 and int(HT.gaussian_radius(13, 13)) == 1
    boxes = torch.tensor([[[23.8, 23.8, 23.8 + 48.4, 23.8 + 48.4]]])  # 48.4 px = 12.1 cells
    heat = HT.splat(boxes, torch.tensor([[1]]), (1, 3, 24, 24), HT.gaussian_radius, 0.7)[0]
    assert int((heat[0, 1] > 0).sum()) == 9 and heat[0, 1].max() == 1.0


# --- FCOS -----------------------------------------------------------------------------------------

def test_fcos_assignment_and_centerness():
    pts = torch.tensor([[10.0, 10.0], [30.0, 30.0], [90.0, 90.0]])
    boxes = torch.tensor([[0.0, 0, 40, 40], [5, 5, 15, 15]])
    labels = torch.tensor([0, 1])
    cls, ltrb = FT.assign(pts, boxes, labels, (0, math.inf))
    assert cls.tolist() == [1, 0, -1]  # inside both -> the smaller box; outside -> background
    assert ltrb[0].tolist() == [5, 5, 5, 5] and ltrb[1].tolist() == [30, 30, 10, 10]
    assert FT.centerness(ltrb[:1]).item() == pytest.approx(1.0)
    assert FT.centerness(ltrb[1:2]).item() == pytest.approx(1 / 3)
    cls, _ = FT.assign(pts, boxes, labels, (8, 16))  # m = 5 and 30: neither in (8, 16]
    assert cls.tolist() == [-1, -1, -1]


def test_fcos_range_test_is_inclusive():
    pts = torch.tensor([[8.0, 8.0]])
    box = torch.tensor([[0.0, 0.0, 16.0, 16.0]])  # m = 8 exactly, the P2/P3 border
    assert FT.assign(pts, box, torch.tensor([0]), (0, 8))[0].item() == 0
    assert FT.assign(pts, box, torch.tensor([0]), (8, 16))[0].item() == 0


def test_fcos_every_object_of_a_scene_batch_gets_a_positive():
    """On generated scenes with FPN maps P2-P4 (strides 4, 8, 16 on 96 px), every object has >= 1 positive
    location; with the inside-box rule alone some small boxes have none (so the fallback is what does it)."""
    from deepatlas.data import scenes

    _, boxes, labels, _ = scenes.generate(40, "mixed", "train", seed=5)
    boxes, labels = torch.as_tensor(boxes).float(), torch.as_tensor(labels)
    pts = [FT.locations(96 // s, 96 // s, s) for s in (4, 8, 16)]
    missing_before = 0
    for i in range(len(boxes)):
        lab = labels[i]
        per_map = FT.assign_levels(pts, boxes[i], [lab] * 3, list(FT.FPN_RANGES))
        for j in torch.nonzero(lab >= 0).flatten().tolist():
            hits = 0
            for (cls, ltrb, ctr), p in zip(per_map, pts):
                x0, y0, x1, y1 = boxes[i, j].tolist()
                mine = (cls == lab[j]) & (p[:, 0] - ltrb[:, 0] - x0).abs().lt(0.6) & (p[:, 1] - ltrb[:, 1] - y0).abs().lt(0.6) \
                    & (p[:, 0] + ltrb[:, 2] - x1).abs().lt(0.6) & (p[:, 1] + ltrb[:, 3] - y1).abs().lt(0.6)
                hits += int(mine.sum())
                assert (ltrb[cls >= 0] > 0).all() and ((ctr[cls >= 0] > 0) & (ctr[cls >= 0] <= 1)).all()
            assert hits >= 1, (i, j, boxes[i, j])
            plain = sum(int((FT.assign(p, boxes[i, j:j + 1], lab[j:j + 1], r)[0] >= 0).sum()) for p, r in zip(pts, FT.FPN_RANGES))
            missing_before += plain == 0
    assert missing_before > 0


def test_fcos_fallback_does_not_grow_a_box_on_a_coarse_map():
    """A 3.5 px box that holds no location centre on either map (centres at 16k + 8 and 4k + 2). On one
    stride-16 map the nearest centre is 2.25 px outside it: no fallback (it would teach a box ~2.3x too big);
    on P2 (stride 4) it takes the nearest centre, 0.25 px outside (7% of its size), with centerness target 1.
    A limit below 7% refuses that too, and -1 turns the fallback off."""
    box, lab = torch.tensor([[42.25, 42.25, 45.75, 45.75]]), torch.tensor([2])
    (cls16, _, _), = FT.assign_levels([FT.locations(6, 6, 16)], box, [lab], [(0, math.inf)])
    assert (cls16 < 0).all()
    (cls4, ltrb4, ctr4), = FT.assign_levels([FT.locations(24, 24, 4)], box, [lab], [(0, math.inf)])
    assert int((cls4 == 2).sum()) == 1 and ctr4[cls4 == 2].item() == 1.0
    assert (ltrb4[cls4 == 2] >= FT.MIN_DIST).all()
    for limit in (0.05, -1.0):
        (cls, _, _), = FT.assign_levels([FT.locations(24, 24, 4)], box, [lab], [(0, math.inf)], max_grow=limit)
        assert (cls < 0).all()


def test_ltrb_iou_equals_box_iou():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(50, 4, generator=g) * 20 + 0.5, torch.rand(50, 4, generator=g) * 20 + 0.5
    to_box = lambda d: torch.stack([-d[:, 0], -d[:, 1], d[:, 2], d[:, 3]], -1)
    assert torch.allclose(FT.ltrb_iou(p, t), box_iou(to_box(p), to_box(t), pairwise=False), atol=1e-6)


def test_focal_loss_reduces_to_bce():
    g = torch.Generator().manual_seed(1)
    logits, t = torch.randn(40, generator=g), (torch.rand(40, generator=g) < 0.3).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, t, reduction="sum")
    assert focal_loss(logits, t, alpha=0.5, gamma=0.0).item() == pytest.approx(0.5 * bce.item(), rel=1e-6)
    assert focal_loss(logits, t, 0.25, 2.0) < focal_loss(logits, t, 0.25, 0.0)  # easy examples down-weighted


def test_penalty_reduced_focal_by_hand():
    """Two cells: a centre (Y = 1) predicted at p = 0.8, and a neighbour (Y = 0.5) predicted at p = 0.3:
    -(1 - 0.8)² ln 0.8 - (1 - 0.5)⁴ 0.3² ln(1 - 0.3); the neighbour costs 1/16 of a plain negative."""
    p = torch.tensor([0.8, 0.3], dtype=torch.float64)
    logits, target = torch.log(p / (1 - p)), torch.tensor([1.0, 0.5], dtype=torch.float64)
    expect = -(0.2 ** 2) * math.log(0.8) - 0.5 ** 4 * 0.3 ** 2 * math.log(0.7)
    assert penalty_reduced_focal(logits, target).item() == pytest.approx(expect, rel=1e-9)
    plain = penalty_reduced_focal(logits[1:], torch.zeros(1, dtype=torch.float64)).item()
    assert penalty_reduced_focal(logits[1:], target[1:]).item() == pytest.approx(plain / 16, rel=1e-9)


def test_yolo_cell_targets_first_object_keeps_its_cell():
    """Stride 16 on a 6 x 6 grid (96 px): a 32 x 16 box centred at (40, 24) is cell (1, 2) with offsets
    (0.5, 0.5) and √(32/96), √(16/96); a second object centred in the same cell does not take it."""
    boxes = torch.tensor([[[24.0, 16.0, 56.0, 32.0], [34.0, 18.0, 46.0, 30.0], [0, 0, 0, 0]]])
    labels = torch.tensor([[2, 0, -1]])
    t_box, t_xyxy, t_cls, has = cell_targets(boxes, labels, 16, (6, 6))
    assert has.sum() == 1 and has[0, 1, 2] and t_cls[0, 1, 2] == 2
    assert torch.allclose(t_box[0, 1, 2], torch.tensor([0.5, 0.5, (32 / 96) ** 0.5, (16 / 96) ** 0.5]))
    assert torch.equal(t_xyxy[0, 1, 2], boxes[0, 0])


def test_fcos_decode_inverts_targets():
    m = FCOS(FCOS.Config(), INFO)
    out = {"cls": torch.full((1, 3, 6, 6), -10.0), "ltrb": torch.ones(1, 4, 6, 6), "ctr": torch.full((1, 6, 6), 10.0)}
    box = torch.tensor([20.0, 30.0, 50.0, 44.0])
    pts = FT.locations(6, 6, 16)
    k = 2 * 6 + 2  # location (40, 40)
    out["cls"][0, 1, 2, 2] = 10.0
    x, y = pts[k]
    out["ltrb"][0, :, 2, 2] = torch.stack([x - box[0], y - box[1], box[2] - x, box[3] - y])
    d = m.decode(out, Level(torch.zeros(1), 16, 0))[0]
    assert d["labels"][0] == 1 and torch.allclose(d["boxes"][0], box)


# --- YOLO v1 --------------------------------------------------------------------------------------

def _perfect_yolo_output(box, cls, B=2, S=6, stride=16):
    out = {"box": torch.full((1, B, 4, S, S), 0.5), "conf": torch.zeros(1, B, S, S), "prob": torch.zeros(1, 3, S, S)}
    out["prob"][0, 0] = 1.0
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    j, i = int(cx // stride), int(cy // stride)
    out["box"][0, 0, :, i, j] = torch.tensor([cx / stride - j, cy / stride - i, ((box[2] - box[0]) / 96) ** 0.5,
                                              ((box[3] - box[1]) / 96) ** 0.5])
    out["conf"][0, 0, i, j] = 1.0
    out["prob"][0, :, i, j] = torch.nn.functional.one_hot(torch.tensor(cls), 3).float()
    return out, (i, j)


def test_yolo_loss_zero_at_the_target_and_weights():
    m = YOLOv1(YOLOv1.Config(), INFO)
    box = torch.tensor([30.0, 40.0, 55.0, 52.0])
    out, (i, j) = _perfect_yolo_output(box, 2)
    lv = Level(torch.zeros(1), 16, 0)
    boxes, labels = box.view(1, 1, 4), torch.tensor([[2]])
    l0 = m.level_loss(out, lv, boxes, labels)
    assert l0["loss"].item() == pytest.approx(0.0, abs=1e-10)
    # error of d in sqrt(w) costs λ_coord d²; a confidence c on an empty box costs λ_noobj c²
    out["box"][0, 0, 2, i, j] += 0.1
    out["conf"][0, 1, 0, 0] = 0.4
    l1 = m.level_loss(out, lv, boxes, labels)
    assert l1["coord"].item() == pytest.approx(5 * 0.01, rel=1e-4)
    assert l1["noobj"].item() == pytest.approx(0.5 * 0.16, rel=1e-4)


def test_yolo_decode_inverts_targets():
    m = YOLOv1(YOLOv1.Config(), INFO)
    box = torch.tensor([30.0, 40.0, 55.0, 52.0])
    out, _ = _perfect_yolo_output(box, 1)
    d = m.decode(out, Level(torch.zeros(1), 16, 0))[0]
    best = d["scores"].argmax()
    assert d["labels"][best] == 1 and torch.allclose(d["boxes"][best], box, atol=1e-4)


# --- necks ----------------------------------------------------------------------------------------

def test_trident_branches_share_weights():
    plain = FCOS(FCOS.Config(), INFO)
    tri = FCOS(FCOS.Config(trident=True), INFO)
    n_plain = sum(p.numel() for p in plain.parameters())
    n_tri = sum(p.numel() for p in tri.parameters())
    assert n_tri == n_plain + 2  # only the per-map FCOS scale scalars are added
    tri.load_state_dict({k: v for k, v in plain.state_dict().items() if k != "scales"} | {"scales": torch.ones(3)})
    x = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        lv_t, lv_p = tri.levels(x), plain.levels(x)
    assert torch.allclose(lv_t[0].feat, lv_p[0].feat, atol=1e-6)  # dilation-1 branch = the plain network
    assert not torch.allclose(lv_t[1].feat, lv_p[0].feat, atol=1e-3)
    assert [lv.size_range for lv in lv_t] == [(0.0, 12.0), (6.0, 24.0), (12.0, math.inf)]


def test_fpn_top_down_reaches_the_finest_level():
    from deepatlas.nn.fpn import FPN

    fpn = FPN([8, 12, 16], 10)
    c2, c3, c4 = torch.randn(1, 8, 24, 24), torch.randn(1, 12, 12, 12), torch.randn(1, 16, 6, 6)
    p = fpn([c2, c3, c4])
    assert [t.shape[-1] for t in p] == [24, 12, 6] and all(t.shape[1] == 10 for t in p)
    p2 = fpn([c2, c3, c4 + 1])
    assert not torch.allclose(p[0], p2[0])  # the deepest map changes the finest output


def test_pyramid_maps_boxes_back():
    from deepatlas.vision.multiscale import pyramid_detect

    def fake(x):  # finds one object whose box, in the resized image, is a fixed fraction of its size
        s = x.shape[-1] / 96
        return [{"boxes": torch.tensor([[10.0, 10, 20, 30]]) * s, "scores": torch.tensor([0.5 + s / 10]),
                 "labels": torch.tensor([0])}]

    d = pyramid_detect(fake, torch.zeros(1, 1, 96, 96), [1.0, 1.5, 2.0], 16, 0.5, 10)[0]
    assert len(d["boxes"]) == 1 and torch.allclose(d["boxes"][0], torch.tensor([10.0, 10, 20, 30]))


@pytest.mark.slow
def test_centernet_learns_shapes(tmp_path):
    """300 steps on shape scenes: well above chance (a few minutes on one thread)."""
    from deepatlas.data.base import DataConfig, load_dataset
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.trainer import fit

    data = load_dataset(DataConfig(name="scenes", variant="shapes", size=1000))
    m = CenterNet(CenterNet.Config(fpn=True), data.info)
    fit(m, data, TrainConfig(steps=300, batch_size=16, ema_decay=0, ckpt_every=300), tmp_path, progress=False)
    r = m.evaluate(data, 100)
    assert r["AP50"] > 0.2


def test_pyramid_valid_range_drops_large_boxes_from_upscaled_images():
    from deepatlas.vision.multiscale import pyramid_detect

    def fake(x):  # at scale 2 it "finds" a large box (40 px, original) that scale 1 does not
        if x.shape[-1] == 96:
            return [{"boxes": torch.tensor([[0.0, 0, 8, 8]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]
        return [{"boxes": torch.tensor([[0.0, 0, 16, 16], [100, 100, 180, 180]]), "scores": torch.tensor([0.8, 0.95]),
                 "labels": torch.tensor([0, 0])}]

    x = torch.zeros(1, 1, 96, 96)
    assert len(pyramid_detect(fake, x, [1.0, 2.0], 16, 0.5, 10)[0]["boxes"]) == 2
    d = pyramid_detect(fake, x, [1.0, 2.0], 16, 0.5, 10, upscaled_max_size=12.0)[0]
    assert d["boxes"].tolist() == [[0.0, 0, 8, 8]] and d["scores"].tolist() == [pytest.approx(0.9)]


def test_cornernet_radius_reproduces_the_released_formula_and_its_slip():
    # values of the released code for a 10x10 box at t = 0.7: min(19.07, 36.73, 2.733) = 2.733
    assert HT.gaussian_radius_cornernet(10, 10, 0.7) == pytest.approx(2.7332, abs=1e-3)
    r = HT.gaussian_radius_cornernet(10, 10, 0.7)
    assert (10 - 2 * r) ** 2 / 100 < 0.25  # a box shrunk by that radius keeps IoU ~0.21, not 0.7
    assert HT.gaussian_radius(10, 10, 0.7) == pytest.approx(0.8167, abs=1e-3)
