"""Augmentations: each piece does what it says when the others are switched off, and the random
resized crop draws from SimCLR's ranges (area 0.08-1, aspect ratio 3/4-4/3)."""

import math

import pytest
import torch
from scipy import integrate, stats

from deepatlas.representation.augment import (AugmentConfig, affine_matrix, augment, brightness, contrast, crop_box,
                                              crop_matrix, flip_matrix, jitter, views, warp)

OFF = dict(crop_area=1.0, crop_ratio=1.0, flip=0.0, brightness=0.0, contrast=0.0, rotate=0.0, shear=0.0, noise=0.0)


def _images(n=4, side=8, seed=0):
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_all_off_is_identity():
    x = _images()
    assert torch.allclose(augment(x, AugmentConfig(**OFF)), x, atol=1e-5)


def test_defaults_are_simclr_views():
    cfg = AugmentConfig()
    assert (cfg.crop_area, cfg.crop_ratio, cfg.flip, cfg.jitter_p) == (0.08, 4 / 3, 0.5, 0.8)
    assert cfg.brightness == cfg.contrast == pytest.approx(0.8 * 0.5)  # colour strength s = 0.5 (CIFAR-10)
    assert cfg.rotate == cfg.shear == cfg.noise == 0.0


@pytest.mark.parametrize("h,w", [(28, 28), (8, 8), (20, 32)])
def test_crop_area_and_aspect_ratio_lie_in_the_paper_ranges(h, w):
    g = torch.Generator().manual_seed(1)
    a = crop_matrix(20000, 0.08, 4 / 3, h, w, generator=g)
    fw, fh = a[:, 0, 0], a[:, 1, 1]
    area = torch.linalg.det(a[:, :, :2])  # the box's share of the image (the image spans [-1, 1]^2)
    ratio = (fw * w) / (fh * h)  # box width / height in pixels
    assert torch.allclose(area, fw * fh) and (a[:, 0, 1] == 0).all() and (a[:, 1, 0] == 0).all()
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 3 / 4 - 1e-5 and ratio.max() <= 4 / 3 + 1e-5
    cap = min(1.0, 4 / 3 * h / w, 4 / 3 * w / h)  # the largest box of ratio in [3/4, 4/3] that fits (1 if square)
    assert area.min() < 0.085 and area.max() > 0.97 * cap and ratio.min() < 0.76 and ratio.max() > 1.32  # ranges used
    assert (fw <= 1).all() and (fh <= 1).all()
    # the box lies inside the image: centre +- half-width within the outer pixel centres
    assert ((a[:, 0, 2].abs() + fw * (1 - 1 / w)) <= (1 - 1 / w) + 1e-6).all()
    assert ((a[:, 1, 2].abs() + fh * (1 - 1 / h)) <= (1 - 1 / h) + 1e-6).all()


def test_crop_draws_are_uniform_in_area_and_log_ratio_where_every_box_fits():
    # For a square image a box with area < 3/4 always fits (f = sqrt(a r) < 1), so no redraw bends the
    # distribution there: area ~ U(0.08, 0.75) and log r ~ U(-log 4/3, log 4/3), independently.
    g = torch.Generator().manual_seed(2)
    fw, fh = crop_box(20000, 0.08, 4 / 3, 28, 28, generator=g)
    area, log_r = fw * fh, (fw / fh).log()
    small = area < 0.75
    assert stats.kstest(area[small].numpy(), stats.uniform(0.08, 0.75 - 0.08).cdf).pvalue > 1e-3
    lo = math.log(3 / 4)
    assert stats.kstest(log_r[small].numpy(), stats.uniform(lo, -2 * lo).cdf).pvalue > 1e-3
    # the share below 3/4 is that of U(0.08, 1) given that the box fits: a draw with area a > 3/4 fails
    # when |log r| > log(1/a), with probability 1 + log(a) / L, L = log 4/3
    L = math.log(4 / 3)
    p_fail = integrate.quad(lambda a: 1 + math.log(a) / L, 0.75, 1.0)[0] / 0.92
    assert small.float().mean().item() == pytest.approx((0.75 - 0.08) / 0.92 / (1 - p_fail), abs=0.01)


def test_crop_without_room_keeps_the_whole_image():
    fw, fh = crop_box(100, 1.0, 1.0, 8, 8)
    assert torch.allclose(fw, torch.ones(100)) and torch.allclose(fh, torch.ones(100))


def test_crop_stays_inside_the_image():
    # A constant image stays constant under any crop: the crop never reads the background (-1).
    x = torch.full((64, 1, 28, 28), 0.5)
    out = augment(x, AugmentConfig(**{**OFF, "crop_area": 0.08, "crop_ratio": 4 / 3}), torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5)


def test_flip():
    x = torch.rand(4, 1, 7, 7)
    assert torch.allclose(augment(x, AugmentConfig(**{**OFF, "flip": 1.0})), x.flip(-1), atol=1e-5)


def test_flip_is_measure_preserving_and_drawn_with_its_probability():
    g = torch.Generator().manual_seed(3)
    a = flip_matrix(20000, 0.5, generator=g)
    assert torch.allclose(torch.linalg.det(a[:, :, :2]).abs(), torch.ones(20000))  # |det| = 1: areas kept
    frac = (a[:, 0, 0] < 0).float().mean().item()
    assert abs(frac - 0.5) < 4 * math.sqrt(0.25 / 20000)
    # a flip permutes the pixels: every image keeps its multiset of values; twice is the identity
    x = _images(16, 9)
    once = warp(x, a[:16])
    assert torch.allclose(once.flatten(1).sort(-1).values, x.flatten(1).sort(-1).values, atol=1e-5)
    assert torch.allclose(warp(once, a[:16]), x, atol=1e-5)


def test_warp_rotation_by_90_degrees_is_rot90():
    x = torch.randn(2, 1, 6, 6)
    a = affine_matrix(2, 0.0, 0.0)
    a[:, :, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # output pixel u reads the input at R u
    assert torch.allclose(warp(x, a), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)


def test_affine_is_a_small_area_preserving_map():
    a = affine_matrix(1000, 10.0, 0.1, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(torch.linalg.det(a[:, :, :2]), torch.ones(1000), atol=1e-5)  # rotation x shear
    angle = torch.atan2(a[:, 1, 0], a[:, 0, 0]).rad2deg()
    assert angle.abs().max() <= 10.0 + 1e-4 and angle.abs().max() > 9.0


def test_brightness_and_contrast_closed_forms():
    u = (_images(6, 8) + 1) / 2  # in [0, 1]
    f = torch.tensor([0.0, 0.5, 1.0, 0.6, 0.9, 1.0])
    assert torch.allclose(brightness(u, f), u * f[:, None, None, None])  # f <= 1: no clipping, black stays black
    assert torch.allclose(brightness(u, f)[0], torch.zeros_like(u[0]))
    c = contrast(u, f)
    assert torch.allclose(c.mean((1, 2, 3)), u.mean((1, 2, 3)), atol=1e-6)  # f <= 1: the mean is kept
    assert torch.allclose(c[0], u[0].mean().expand_as(u[0]))  # f = 0: a flat grey image
    assert torch.allclose(c[2], u[2])  # f = 1: unchanged
    # f > 1 clips to [0, 1], like torchvision's ColorJitter
    big = torch.full((6,), 3.0)
    assert brightness(u, big).max() <= 1 and contrast(u, big).min() >= 0 and contrast(u, big).max() <= 1


def test_jitter_keeps_the_range_and_applies_with_its_probability():
    x = _images(4000, 6, seed=4)
    g = torch.Generator().manual_seed(5)
    out = jitter(x, 0.8, 0.8, 0.8, generator=g)
    assert out.min() >= -1 and out.max() <= 1
    changed = (out - x).flatten(1).abs().amax(1) > 1e-6
    assert abs(changed.float().mean().item() - 0.8) < 0.03
    assert torch.equal(jitter(x, 0.8, 0.8, 0.0), x)  # p = 0: never


def test_views_keep_images_in_their_range_without_noise():
    x = _images(32, 28)
    v = views(x, AugmentConfig(), 2, torch.Generator().manual_seed(6))
    assert v.min() >= -1 - 1e-6 and v.max() <= 1 + 1e-6


def test_noise_has_its_std():
    x = torch.zeros(256, 1, 28, 28)
    noisy = augment(x, AugmentConfig(**{**OFF, "noise": 0.2}), torch.Generator().manual_seed(0))
    assert abs((noisy - x).std().item() - 0.2) < 0.005


def test_same_seed_same_views_other_seed_other_views():
    x = _images(8, 12)
    cfg = AugmentConfig(rotate=10.0, shear=0.1, noise=0.1)
    a = views(x, cfg, 2, torch.Generator().manual_seed(7))
    b = views(x, cfg, 2, torch.Generator().manual_seed(7))
    c = views(x, cfg, 2, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    torch.manual_seed(9)  # without a generator: torch's global RNG, as seeded by the trainer
    d = views(x, cfg, 2)
    torch.manual_seed(9)
    assert torch.equal(d, views(x, cfg, 2))


def test_views_shape_and_independence():
    x = torch.rand(5, 1, 8, 8)
    v = views(x, AugmentConfig(), 3)
    assert v.shape == (3, 5, 1, 8, 8)
    assert not torch.allclose(v[0], v[1])
