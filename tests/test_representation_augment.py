"""Augmentations: each piece does what it says when the others are switched off."""

import torch

from deepatlas.representation.augment import AugmentConfig, affine_matrix, augment, views, warp

OFF = dict(crop_scale=1.0, flip=0.0, rotate=0.0, shear=0.0, noise=0.0)


def test_all_off_is_identity():
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert torch.allclose(augment(x, AugmentConfig(**OFF)), x, atol=1e-5)


def test_flip():
    x = torch.rand(4, 1, 7, 7)
    assert torch.allclose(augment(x, AugmentConfig(**{**OFF, "flip": 1.0})), x.flip(-1), atol=1e-5)


def test_crop_stays_inside_the_image():
    # A constant image stays constant under any crop: the crop never reads the background (-1).
    torch.manual_seed(0)
    x = torch.full((64, 1, 28, 28), 0.5)
    out = augment(x, AugmentConfig(**{**OFF, "crop_scale": 0.3}))
    assert torch.allclose(out, x, atol=1e-5)


def test_warp_rotation_by_90_degrees_is_rot90():
    x = torch.randn(2, 1, 6, 6)
    a = affine_matrix(2, 0.0, 0.0)
    a[:, :, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # output pixel u reads the input at R u
    assert torch.allclose(warp(x, a), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)


def test_affine_is_a_small_area_preserving_map():
    torch.manual_seed(0)
    a = affine_matrix(1000, 10.0, 0.1)
    assert torch.allclose(torch.linalg.det(a[:, :, :2]), torch.ones(1000), atol=1e-5)  # rotation x shear
    angle = torch.atan2(a[:, 1, 0], a[:, 0, 0]).rad2deg()
    assert angle.abs().max() <= 10.0 + 1e-4 and angle.abs().max() > 9.0


def test_noise_has_its_std():
    torch.manual_seed(0)
    x = torch.zeros(256, 1, 28, 28)
    noisy = augment(x, AugmentConfig(**{**OFF, "noise": 0.2}))
    assert abs((noisy - x).std().item() - 0.2) < 0.005


def test_views_shape_and_independence():
    x = torch.rand(5, 1, 8, 8)
    v = views(x, AugmentConfig(), 3)
    assert v.shape == (3, 5, 1, 8, 8)
    assert not torch.allclose(v[0], v[1])
