"""LLaDA's generation: a fixed-length answer starts fully masked and is filled in `steps` rounds. At each
round the network predicts every masked token; of those predictions, the scheduled number are kept and
the rest stay masked ("remasked"):

- `low_confidence`: keep the predictions with the highest probability p(x0^l | x_t);
- `random`: keep uniformly random ones (with temperature 1 and one token per round this is exact
  any-order autoregressive sampling from the denoiser).

Semi-autoregressive: the answer is split into blocks of `block_length` filled left to right, each in
steps / n_blocks rounds. Classifier-free guidance: logits = u + (w + 1) (c - u) where c sees the prompt
and u sees the prompt masked out (LLaDA, Appendix B).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch

from deepatlas.errors import UserError
from deepatlas.registry import register_sampler


def transfer_counts(n_masked: int, steps: int) -> list[int]:
    """How many tokens to reveal at each of `steps` rounds: as even as possible, earlier rounds larger."""
    base, extra = divmod(n_masked, steps)
    return [base + (i < extra) for i in range(steps)]


@torch.no_grad()
def llada_generate(logits_fn: Callable[[torch.Tensor], torch.Tensor], prompt: torch.Tensor, length: int, steps: int,
                   mask_id: int, block_length: int | None = None, remasking: str = "low_confidence",
                   temperature: float = 0.0, cfg_scale: float = 0.0) -> torch.Tensor:
    """prompt (B, P) -> (B, P + length). logits_fn: x (B, T) -> logits over real tokens (B, T, N)."""
    if remasking not in ("low_confidence", "random"):
        raise UserError(f"remasking must be 'low_confidence' or 'random' (samplers llada-low-confidence, llada-random), got {remasking!r}")
    block_length = block_length or length
    n_blocks = math.ceil(length / block_length)
    if steps < n_blocks:
        raise UserError(f"--steps {steps} is fewer than the {n_blocks} blocks of --block {block_length}; raise --steps")
    B, P = prompt.shape
    x = torch.cat([prompt, torch.full((B, length), mask_id, dtype=prompt.dtype, device=prompt.device)], 1)
    is_prompt = torch.zeros_like(x, dtype=torch.bool)
    is_prompt[:, :P] = True
    block_steps = transfer_counts(steps, n_blocks)
    for b in range(n_blocks):
        lo, hi = P + b * block_length, P + min((b + 1) * block_length, length)
        for k in transfer_counts(hi - lo, block_steps[b]):
            if k == 0:
                continue
            logits = logits_fn(x).double()
            if cfg_scale > 0:
                un = logits_fn(torch.where(is_prompt, torch.full_like(x, mask_id), x)).double()
                logits = un + (cfg_scale + 1) * (logits - un)
            if temperature > 0:
                x0 = torch.distributions.Categorical(logits=logits / temperature).sample()
            else:
                x0 = logits.argmax(-1)
            if remasking == "low_confidence":
                conf = logits.softmax(-1).gather(-1, x0[..., None])[..., 0]
            else:
                conf = torch.rand(x0.shape, dtype=torch.float64, device=x.device)
            masked = x == mask_id
            in_block = torch.zeros_like(masked)
            in_block[:, lo:hi] = True
            conf = conf.masked_fill(~(masked & in_block), -math.inf)
            pick = conf.topk(k, dim=-1).indices  # (B, k)
            x = x.scatter(1, pick, x0.gather(1, pick))
    return x


register_sampler("llada-low-confidence", "discrete", "LLaDA: keep the most confident predictions, remask the rest")(partial(llada_generate, remasking="low_confidence"))
register_sampler("llada-random", "discrete", "LLaDA: keep random predictions (exact any-order sampling at 1 token/step)")(partial(llada_generate, remasking="random"))
