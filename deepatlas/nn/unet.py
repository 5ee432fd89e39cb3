"""A small U-Net for images, conditioned on a noise level (and optional class label).

Levels halve the resolution (stride-2 conv) and double as configured by `channel_mult`; each level has
`num_res_blocks` residual blocks (GroupNorm, SiLU, conv; the embedding adds a per-channel shift);
optional self-attention at the lowest resolution. The output conv starts at zero, so an untrained
network outputs F = 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepatlas.nn.time_embedding import TimeEmbedding


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, ch // 4) if ch >= 8 else 1, ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm, self.qkv, self.proj, self.heads = _norm(ch), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1), heads

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))  # (B, C, H, W)


class UNet(nn.Module):
    def __init__(self, in_ch: int = 1, channels: int = 32, channel_mult: tuple[int, ...] = (1, 2),
                 num_res_blocks: int = 1, attention: bool = False, dropout: float = 0.0, num_classes: int = 0):
        super().__init__()
        self.embed = TimeEmbedding(channels, num_classes)
        emb_dim = self.embed.out_dim
        self.inp = nn.Conv2d(in_ch, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [channels], channels
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, channels * mult, emb_dim, dropout))
                ch = channels * mult
                skips.append(ch)
            if level < len(channel_mult) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim, dropout)]
                                 + ([Attention(ch)] if attention else []) + [ResBlock(ch, ch, emb_dim, dropout)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), channels * mult, emb_dim, dropout))
                ch = channels * mult
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
                self.up.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, in_ch, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(c_noise, y)
        h = self.inp(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                skip = hs.pop()
                if skip.shape[-1] != h.shape[-1]:  # odd sizes (7 -> 14 -> 28 is fine; 7 -> 4 -> 8 is not)
                    h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
                h = layer(torch.cat([h, skip], 1), emb)
            else:
                h = layer(h)
        return self.out(h)
