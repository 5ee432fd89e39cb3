import pytest
import torch

from deepatlas.vision import boxes as B

BOXES = torch.tensor([[0, 0, 100, 100], [0, 0, 50, 50], [200, 200, 300, 300], [0, 0, 25, 25]], dtype=torch.float)


def test_iou_published_vector():
    want = torch.tensor([[1, .25, 0], [.25, 1, 0], [0, 0, 1], [.0625, .25, 0]])
    assert torch.allclose(B.box_iou(BOXES, BOXES[:3]), want, atol=1e-4)


def test_giou_published_vector():
    want = torch.tensor([[1, .25, -.7778], [.25, 1, -.8611], [-.7778, -.8611, 1], [.0625, .25, -.8819]])
    assert torch.allclose(B.generalized_box_iou(BOXES, BOXES[:3]), want, atol=1e-4)


def test_diou_closed_form():
    # boxes [0,0,100,100] and [200,200,300,300]: IoU 0, centres (50,50),(250,250): rho² = 80000, c² = 180000
    d = B.distance_box_iou(BOXES[:1], BOXES[2:3])
    assert torch.allclose(d, torch.tensor([[-80000 / 180000]]), atol=1e-6)
    # concentric boxes: DIoU = IoU
    assert torch.allclose(B.distance_box_iou(BOXES[:1], torch.tensor([[25., 25, 75, 75]])), torch.tensor([[.25]]))


def test_elementwise_matches_diagonal_of_pairwise():
    g = torch.Generator().manual_seed(0)
    a = _random_boxes(20, g)
    b = _random_boxes(20, g)
    for f in (B.box_iou, B.generalized_box_iou, B.distance_box_iou):
        assert torch.allclose(f(a, b, pairwise=False), f(a, b).diagonal(), atol=1e-6)


def test_conversions_round_trip():
    g = torch.Generator().manual_seed(1)
    b = _random_boxes(50, g)
    assert torch.allclose(B.xywh_to_xyxy(B.xyxy_to_xywh(b)), b, atol=1e-5)
    assert torch.allclose(B.cxcywh_to_xyxy(B.xyxy_to_cxcywh(b)), b, atol=1e-5)
    assert torch.allclose(B.xyxy_to_xywh(torch.tensor([1., 2, 4, 8])), torch.tensor([1., 2, 3, 6]))
    assert torch.allclose(B.xyxy_to_cxcywh(torch.tensor([1., 2, 4, 8])), torch.tensor([2.5, 5, 3, 6]))


def _random_boxes(n, g, size=100.0):
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3 + 1
    return torch.cat([xy, xy + wh], 1)


def _brute_nms(boxes, scores, thr):
    """The definition, written as plainly as possible in Python floats."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    bl, sl = boxes.tolist(), scores.tolist()
    rest = sorted(range(len(bl)), key=lambda i: -sl[i])
    keep = []
    while rest:
        i = rest.pop(0)
        keep.append(i)
        rest = [j for j in rest if not iou(bl[i], bl[j]) > thr]
    return keep


@pytest.mark.parametrize("seed", range(8))
def test_nms_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    boxes = _random_boxes(80, g, size=60.0).double()
    scores = torch.rand(80, generator=g).double()
    thr = [0.3, 0.5, 0.7][seed % 3]
    assert B.nms(boxes, scores, thr).tolist() == _brute_nms(boxes, scores, thr)


def test_nms_strictly_above_threshold():
    # IoU of these two boxes is exactly 0.5: kept at threshold 0.5, suppressed at 0.49
    boxes = torch.tensor([[0., 0, 2, 1], [0, 0, 2, 1]])
    boxes[1, 2] = 1.0  # [0,0,1,1] inside [0,0,2,1]: IoU = 1/2
    scores = torch.tensor([0.9, 0.8])
    assert B.nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert B.nms(boxes, scores, 0.49).tolist() == [0]


@pytest.mark.parametrize("seed", range(4))
def test_batched_nms_is_nms_per_class(seed):
    g = torch.Generator().manual_seed(100 + seed)
    boxes = _random_boxes(90, g, size=50.0)
    scores = torch.rand(90, generator=g)
    classes = torch.randint(0, 4, (90,), generator=g)
    got = set(B.batched_nms(boxes, scores, classes, 0.5).tolist())
    want = set()
    for c in range(4):
        idx = torch.nonzero(classes == c).flatten()
        want |= {idx[i].item() for i in _brute_nms(boxes[idx], scores[idx], 0.5)}
    assert got == want
    kept = B.batched_nms(boxes, scores, classes, 0.5)
    assert torch.all(scores[kept][:-1] >= scores[kept][1:])  # by decreasing score


def test_nms_empty():
    assert B.nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0
    assert B.batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0
