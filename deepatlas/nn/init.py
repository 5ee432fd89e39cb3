"""DCGAN's weight initialisation (Radford et al. 2015, section 4): every convolution, transposed
convolution and linear weight drawn from N(0, 0.02²); batch-norm scales gamma from N(1, 0.02²) and shifts
beta = 0. The paper's nets have no other biases; ours are set to 0, which is the same function at init."""

from __future__ import annotations

from torch import nn

STD = 0.02


def dcgan_init(module: nn.Module, std: float = STD) -> nn.Module:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module
