"""Block diffusion (BD3-LM, Arriola et al. 2025): autoregressive over blocks of `block` tokens, masked
diffusion within a block. -log p(x) <= sum_b NELBO_MDLM(x^b | x^{<b}).

Training does all blocks in one pass over the doubled sequence [x_t ; x0] (2L tokens, both copies with
positions 0..L-1) under the mask
    x_t block b  sees  x_t block b (bidirectional)  and  x0 blocks < b,
    x0  block b  sees  x0 blocks <= b (block-causal),
so every noisy block is denoised from its clean prefix. Sampling goes block by block: a block starts
masked, is denoised with the ancestral sampler while attending to the KV cache of the clean prefix, and
once clean it is run once more to append its keys/values to the cache.

block = 1: each block is one token, masked with probability t and weighted 1/t, so the bound is exactly
the autoregressive NLL; block = L: no clean prefix, plain masked diffusion.
"""

from __future__ import annotations

import torch

from deepatlas.discrete.samplers import ancestral
from deepatlas.nn.transformer import Transformer


def bd3_mask(L: int, block: int, device=None) -> torch.Tensor:
    """(2L, 2L) boolean attention mask over [x_t ; x0]."""
    b = torch.arange(L, device=device) // block
    same, before, upto = b[:, None] == b[None, :], b[None, :] < b[:, None], b[None, :] <= b[:, None]
    top = torch.cat([same, before], 1)
    bottom = torch.cat([torch.zeros_like(same), upto], 1)
    return torch.cat([top, bottom], 0)


def bd3_logits(net: Transformer, xt: torch.Tensor, x0: torch.Tensor, block: int) -> torch.Tensor:
    """Denoiser logits for every noisy block at once (B, L, N)."""
    L = xt.shape[1]
    pos = torch.arange(L, device=xt.device).repeat(2)
    return net(torch.cat([xt, x0], 1), mask=bd3_mask(L, block, xt.device), pos=pos)[:, :L]


def block_times(B: int, L: int, block: int, t_min: float = 1e-3, device=None) -> torch.Tensor:
    """One time per block (B, L): low-discrepancy over the batch, shared by the tokens of a block."""
    n_blocks = -(-L // block)
    u = (torch.rand((), device=device) + torch.arange(B * n_blocks, device=device) / (B * n_blocks)) % 1.0
    u = u[torch.randperm(B * n_blocks, device=device)].view(B, n_blocks)
    t = t_min + (1 - t_min) * u
    return t.repeat_interleave(block, 1)[:, :L]


def block_count_mask(x0: torch.Tensor, block: int, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LLaDA's lower-variance estimator applied per block: in each block of size s draw l ~ U{1..s} and mask
    l random positions. Returns x_t and the per-token "time" l/s, so that `masked_nelbo`'s 1/t weight is
    s/l; same expectation as drawing t per block. With block = 1 every token is masked with weight 1:
    the loss is then exactly the autoregressive NLL, with no variance."""
    B, L = x0.shape
    n_blocks = -(-L // block)
    pos = torch.arange(n_blocks * block, device=x0.device)
    size = (L - (pos // block) * block).clamp(max=block).view(n_blocks, block)[:, 0]  # (n_blocks,)
    l = (torch.rand(B, n_blocks, device=x0.device) * size).floor().long() + 1
    score = torch.rand(B, n_blocks * block, device=x0.device).masked_fill(pos >= L, 2.0).view(B, n_blocks, block)
    masked = (score.argsort(-1).argsort(-1) < l[..., None]).view(B, -1)[:, :L]
    t = (l / size).repeat_interleave(block, 1)[:, :L]
    return torch.where(masked, torch.full_like(x0, mask_id), x0), t


@torch.no_grad()
def bd3_sample(net: Transformer, prompt: torch.Tensor, length: int, block: int, steps: int, mask_id: int,
               use_cache: bool = True) -> torch.Tensor:
    """prompt (B, P) -> (B, P + length), `steps` ancestral steps per block. Whole blocks of the prompt
    are put in the cache; a partial last prompt block is kept fixed inside the first generated block."""
    B, P = prompt.shape
    full = (P // block) * block
    x = prompt[:, :full]
    cache = net.new_cache() if use_cache else None
    if use_cache and full:
        net(x, mask=_prefix_mask(full, block, x.device), cache=cache, store=True)
    while x.shape[1] < P + length:
        start = x.shape[1]
        given = prompt[:, start:start + block]
        size = min(block, P + length - start)
        xb = torch.full((B, size), mask_id, dtype=prompt.dtype, device=prompt.device)
        xb[:, : given.shape[1]] = given
        fixed = torch.zeros_like(xb, dtype=torch.bool)
        fixed[:, : given.shape[1]] = True
        pos = torch.arange(start, start + size, device=x.device)
        if use_cache:
            fn = lambda z: net(z, pos=pos, cache=cache).log_softmax(-1)  # noqa: E731
        else:
            mask = _prefix_mask(start + size, block, x.device)
            mask[start:, :] = True  # the noisy block sees the whole clean prefix and itself
            fn = lambda z: net(torch.cat([x, z], 1), mask=mask)[:, start:].log_softmax(-1)  # noqa: E731
        xb = ancestral(fn, mask_id, xb, steps, fixed=fixed)
        if use_cache:
            net(xb, pos=pos, cache=cache, store=True)
        x = torch.cat([x, xb], 1)
    return x


def _prefix_mask(T: int, block: int, device=None) -> torch.Tensor:
    b = torch.arange(T, device=device) // block
    return b[None, :] <= b[:, None]
