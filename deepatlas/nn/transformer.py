"""One Transformer for every text model: pre-norm blocks, rotary position embeddings (RoPE) and
`F.scaled_dot_product_attention`, used bidirectionally (masked diffusion), causally (AR) or with any
boolean mask (block diffusion), with an optional key/value cache.

Attention mask convention: `mask[i, j] = True` means query i may attend to key j, where keys are the
cached tokens followed by the new ones. `mask=None` is full (bidirectional) attention, `"causal"` lets
new token i see every cached token and new tokens <= i.

RoPE rotates each (even, odd) half-pair of query/key features by the angle pos * base^(-2k/d), so
q·k depends only on the position difference; positions are passed explicitly so that the two copies of
a block-diffusion sequence can share them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def rope_angles(pos: torch.Tensor, d: int, dtype: torch.dtype, base: float = 10000.0):
    """(cos, sin) of the angles pos * base^(-2k/d), each repeated over both halves: (T, d) for pos (T,),
    (B, 1, T, d) for pos (B, T); sin carries the minus sign of the first half. Computed once per forward."""
    freq = base ** (-torch.arange(0, d, 2, dtype=torch.float32, device=pos.device) / d)  # (d/2,)
    ang = pos.to(torch.float32)[..., None] * freq  # (T, d/2) or (B, T, d/2)
    if ang.dim() == 3:
        ang = ang[:, None]
    cos, sin = torch.cos(ang), torch.sin(ang)
    return torch.cat([cos, cos], -1).to(dtype), torch.cat([-sin, sin], -1).to(dtype)


def rope(x: torch.Tensor, angles) -> torch.Tensor:
    """Rotate x (..., T, d) by `rope_angles`: [x1 cos - x2 sin, x1 sin + x2 cos] written as
    x * cos + [x2, x1] * sin, the same numbers with fewer passes over x."""
    cos, sin = angles
    d = x.shape[-1]
    return x * cos + torch.cat([x[..., d // 2:], x[..., : d // 2]], dim=-1) * sin


class KVCache:
    """Keys and values of tokens already processed, one (k, v) pair per layer, each (B, H, S, Dh)."""

    def __init__(self, n_layers: int):
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def get(self, layer: int, k: torch.Tensor, v: torch.Tensor, store: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values of cached + new tokens; with `store`, the new ones are kept for later calls."""
        if self.k[layer] is not None:
            k_all, v_all = torch.cat([self.k[layer], k], 2), torch.cat([self.v[layer], v], 2)
        else:
            k_all, v_all = k, v
        if store:
            self.k[layer], self.v[layer] = k_all, v_all
        return k_all, v_all


class Attention(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)

    def forward(self, h, angles, mask, cache: KVCache | None, layer: int, store: bool):
        B, T, D = h.shape
        qkv = self.qkv(h).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # (3, B, H, T, Dh)
        q, k = rope(qkv[:2], angles)  # queries and keys rotated in one pass
        v = qkv[2]
        if cache is not None:
            k, v = cache.get(layer, k, v, store)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, n_heads)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))

    def forward(self, h, angles, mask, cache, layer, store):
        h = h + self.attn(self.norm1(h), angles, mask, cache, layer, store)
        return h + self.mlp(self.norm2(h))


class Transformer(nn.Module):
    """Token ids (B, T) -> logits (B, T, n_out). `cond` (B, d), e.g. a noise-level embedding, is added
    to every position's input (SEDD with the uniform process needs to know the noise level)."""

    def __init__(self, n_in: int, n_out: int, d: int = 128, n_layers: int = 4, n_heads: int = 4):
        super().__init__()
        if d % n_heads or (d // n_heads) % 2:
            raise ValueError(f"width {d} must split into {n_heads} heads of even size")
        self.n_heads = n_heads
        self.embed = nn.Embedding(n_in, d)
        self.blocks = nn.ModuleList(Block(d, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_out, bias=False)
        self.apply(self._init)
        for b in self.blocks:  # GPT-2 style: residual projections scaled by depth
            nn.init.normal_(b.attn.proj.weight, std=0.02 / math.sqrt(2 * n_layers))
            nn.init.normal_(b.mlp[2].weight, std=0.02 / math.sqrt(2 * n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.blocks))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | str | None = None, pos: torch.Tensor | None = None,
                cond: torch.Tensor | None = None, cache: KVCache | None = None, store: bool = False) -> torch.Tensor:
        B, T = tokens.shape
        past = cache.length if cache is not None else 0
        if pos is None:
            pos = torch.arange(past, past + T, device=tokens.device)
        if isinstance(mask, str):
            if mask != "causal":
                raise ValueError(f"mask must be None, 'causal' or a boolean tensor, got {mask!r}")
            mask = causal_mask(T, past, tokens.device)
        h = self.embed(tokens)
        if cond is not None:
            h = h + cond[:, None, :]
        angles = rope_angles(pos, h.shape[-1] // self.n_heads, h.dtype)
        for i, block in enumerate(self.blocks):
            h = block(h, angles, mask, cache, i, store)
        return self.head(self.norm(h))


def causal_mask(T: int, past: int = 0, device=None) -> torch.Tensor:
    """(T, past + T): new token i sees all `past` cached tokens and new tokens j <= i."""
    return torch.ones(T, past + T, dtype=torch.bool, device=device).tril(diagonal=past)


def block_causal_mask(T: int, block: int, device=None) -> torch.Tensor:
    """(T, T): token i sees token j when block(j) <= block(i)."""
    b = torch.arange(T, device=device) // block
    return b[None, :] <= b[:, None]
