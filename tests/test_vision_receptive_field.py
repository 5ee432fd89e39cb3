"""Receptive fields: published sizes, a gradient oracle, torch modules with residual branches, the CLI."""

import random

import pytest
import torch
from torch import nn

from deepatlas.errors import UserError
from deepatlas.vision.receptive_field import (BUILTIN, Layer, module_field, module_fields, parse_spec,
                                              receptive_fields)


@pytest.mark.parametrize("net,size,jump,padding", [
    # Araujo, Norris & Sim, "Computing Receptive Fields of CNNs", Distill 2019, table of networks.
    ("alexnet", 195, 32, 64), ("vgg16", 212, 32, 90), ("resnet50", 483, 32, 239),
    # The same ResNet-50 with the stride in the first block of each stage (torchvision).
    ("resnet50-v1.5", 427, 32, None),
])
def test_published_values(net, size, jump, padding):
    f = receptive_fields(BUILTIN[net]())[-1]
    assert (f.size, f.jump) == (size, jump)
    if padding is not None:
        assert f.padding == padding


def _gradient_field(layers, n=400):
    """The input pixels that reach one output unit, found by back-propagation through all-ones kernels."""
    mods = []
    for ly in layers:
        conv = nn.Conv1d(1, 1, ly.kernel, ly.stride, ly.padding, ly.dilation, bias=False)
        nn.init.ones_(conv.weight)
        mods.append(conv)
    net = nn.Sequential(*mods).double()
    x = torch.zeros(1, 1, n, dtype=torch.float64, requires_grad=True)
    y = net(x)
    i = y.shape[-1] // 2  # a unit far from the borders
    y[0, 0, i].backward()
    hit = (x.grad[0, 0] != 0).nonzero().flatten()
    return i, hit.min().item(), hit.max().item()


def test_recurrences_match_gradient_oracle():
    rng = random.Random(0)
    for _ in range(30):
        layers = [Layer(f"l{i}", rng.randint(1, 5), rng.randint(1, 3), rng.randint(0, 2), rng.randint(1, 3))
                  for i in range(rng.randint(1, 5))]
        f = receptive_fields(layers)[-1]
        i, lo, hi = _gradient_field(layers)
        centre = f.start + i * f.jump  # unit i's field is centred at start + i * jump
        assert (lo, hi) == (centre - (f.size - 1) / 2, centre + (f.size - 1) / 2), layers


def _vgg16():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(512 * 49, 10))


class Bottleneck(nn.Module):
    def __init__(self, c_in, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.relu = nn.ReLU()
        self.down = (nn.Conv2d(c_in, width * 4, 1, stride, bias=False)
                     if stride != 1 or c_in != width * 4 else nn.Identity())

    def forward(self, x):
        return self.relu(self.conv3(self.relu(self.conv2(self.relu(self.conv1(x))))) + self.down(x))


def _resnet50_v15():
    """torchvision's resnet50 layout (stride in conv2 of each stage's first block), thin channels."""
    layers, c = [nn.Conv2d(3, 4, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], 4
    for stage, blocks in enumerate((3, 4, 6, 3)):
        for b in range(blocks):
            layers.append(Bottleneck(c, 1, 2 if (b == 0 and stage > 0) else 1))
            c = 4
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def test_module_vgg16_is_a_chain():
    f = module_field(_vgg16())
    assert (f.size, f.jump, f.padding) == (212, 32, 90)


def test_module_resnet_unites_branches():
    # The 1x1 stride-2 shortcut must not be chained after the main path: 427, not something larger.
    f = module_field(_resnet50_v15())
    assert (f.size, f.jump) == (427, 32)
    assert f.padding == receptive_fields(BUILTIN["resnet50-v1.5"]())[-1].padding


def test_branches_of_different_size_are_united():
    class TwoPaths(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(1, 1, 3, padding=1)
            self.b = nn.Conv1d(1, 1, 7, padding=3, dilation=1)

        def forward(self, x):
            return self.a(x) + self.b(x)

    rows = module_fields(TwoPaths())
    assert [r[1].size for r in rows] == [3, 7]
    # The union is the larger field (both centred on the same pixel); computed at the `add` node.
    assert module_field(nn.Sequential(TwoPaths(), nn.Conv1d(1, 1, 3, padding=1))).size == 9


def test_functional_pooling_is_read():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return torch.nn.functional.avg_pool2d(torch.nn.functional.max_pool2d(self.conv(x), 3, 2, padding=1), 2)

    f = module_field(Net())
    assert (f.size, f.jump) == (receptive_fields(parse_spec("3,1,1; 3,2,1; 2,2"))[-1].size, 4)


def test_untraceable_module_falls_back_to_a_chain():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv1d(1, 1, 3), nn.MaxPool1d(2)

        def forward(self, x):
            return self.b(self.a(x)) if x.sum() > 0 else x  # data-dependent: torch.fx cannot trace it

    f = module_field(Branchy())
    assert (f.size, f.jump) == (4, 2)


def test_spec_parsing_and_errors():
    layers = parse_spec("conv1=11,4  # comment\npool1=3,2; 5,1,2,2")
    assert layers == [Layer("conv1", 11, 4), Layer("pool1", 3, 2), Layer("layer3", 5, 1, 2, 2)]
    with pytest.raises(UserError, match="integers"):
        parse_spec("conv=3,x")
    with pytest.raises(UserError, match="1 to 4"):
        parse_spec("1,2,3,4,5")
    with pytest.raises(UserError, match="stride must be >= 1"):
        receptive_fields(parse_spec("3,0"))


def test_cli(capsys, tmp_path):
    from deepatlas.cli import main

    assert main(["rf", "resnet50"]) == 0
    assert "receptive field 483 px, effective stride 32" in capsys.readouterr().out
    spec = tmp_path / "net.txt"
    spec.write_text("# a file\nc1=3,1,1\np1=2,2\n")
    assert main(["rf", str(spec), "--input", "32"]) == 0
    assert "receptive field 4 px, effective stride 2" in capsys.readouterr().out
    assert main(["rf", "vgg61"]) == 2
    assert "did you mean 'vgg16'" in capsys.readouterr().err


class _Residual(nn.Module):
    """y = conv2(conv1(x)) + shortcut(x), with the shortcut (1x1, stride 2) run before or after the convs."""

    def __init__(self, shortcut_first: bool):
        super().__init__()
        self.shortcut_first = shortcut_first
        self.conv1 = nn.Conv2d(1, 1, 3, 2, 1)
        self.conv2 = nn.Conv2d(1, 1, 3, 1, 1)
        self.shortcut = nn.Conv2d(1, 1, 1, 2)

    def forward(self, x):
        if self.shortcut_first:
            s = self.shortcut(x)
            return self.conv2(self.conv1(x)) + s
        h = self.conv2(self.conv1(x))
        return h + self.shortcut(x)


def test_residual_field_does_not_depend_on_statement_order():
    # by hand: conv1 (3, s2, p1): r = 3, j = 2, start = 0; conv2 (3, s1, p1): r = 3 + 2*2 = 7, j = 2, start = 0;
    # shortcut (1, s2): r = 1, j = 2, start = 0. Union of [-3, 3] and [0, 0]: r = 7, j = 2, start = 0.
    for first in (True, False):
        f = module_field(_Residual(first))
        assert (f.size, f.jump, f.start) == (7, 2, 0), first
    # and after a second block the fields chain: 7 + (7 - 1) * 2 = 19, jump 4
    for a, b in ((True, False), (False, True), (False, False)):
        f = module_field(nn.Sequential(_Residual(a), _Residual(b)))
        assert (f.size, f.jump) == (19, 4), (a, b)
