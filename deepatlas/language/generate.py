"""`deepatlas generate RUN --prompt TEXT`: continue a prompt with any trained text model.

Options a method does not use are ignored by it: `--block` and `--remasking` are for masked diffusion
(semi-autoregressive blocks, low_confidence | random | ancestral), `--sampler` for SEDD (euler | tweedie),
`--top-k/--top-p` for the AR model; `--steps` is denoising steps (per block for bd3lm).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from deepatlas.errors import UserError
from deepatlas.registry import register_command


@register_command("generate", "language", "continue a prompt with a trained text model: deepatlas generate RUN --prompt TEXT")
def configure(p: argparse.ArgumentParser):
    p.add_argument("run", type=Path, help="run directory of a text model")
    p.add_argument("--prompt", default="", help="text to continue (default: none)")
    p.add_argument("--length", type=int, default=128, help="tokens to generate (default: 128)")
    p.add_argument("--n", type=int, default=1, help="number of continuations (default: 1)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (diffusion; per block for bd3lm)")
    p.add_argument("--block", type=int, default=None, help="semi-autoregressive block length (llada/mdlm)")
    p.add_argument("--remasking", default=None, choices=("low_confidence", "random", "ancestral"),
                   help="masked-diffusion generation (default: the method's)")
    p.add_argument("--sampler", default=None, help="SEDD sampler: euler | tweedie")
    p.add_argument("--cfg", type=float, default=0.0, help="classifier-free guidance scale w (llada; 0: off)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (0: greedy)")
    p.add_argument("--top-k", type=int, default=None, help="top-k truncation (AR)")
    p.add_argument("--top-p", type=float, default=None, help="top-p truncation (AR)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema", help="EMA or raw weights (default: ema)")

    def run(args) -> int:
        from deepatlas.language.lm import LanguageModel
        from deepatlas.train.run import open_run

        if args.length < 1 or args.n < 1:
            raise UserError(f"--length and --n must be >= 1, got {args.length} and {args.n}")
        if args.steps is not None and args.steps < 1:
            raise UserError(f"--steps must be >= 1, got {args.steps}")
        method, dataset, cfg, step = open_run(args.run, args.weights)
        if not isinstance(method, LanguageModel):
            raise UserError(f"{args.run} holds a '{cfg.method}' run, not a text model; try `deepatlas sample {args.run}`")
        torch.manual_seed(args.seed)
        prompt = method.tokenizer.encode(args.prompt)[None].expand(args.n, -1)
        opts = {k: v for k, v in dict(steps=args.steps, block=args.block, remasking=args.remasking,
                                      sampler=args.sampler, cfg_scale=args.cfg, temperature=args.temperature,
                                      top_k=args.top_k, top_p=args.top_p).items() if v is not None}
        out = method.generate(prompt, args.length, **opts)
        for row in out:
            print(method.tokenizer.decode(row))
            if args.n > 1:
                print("-----")
        return 0

    return run
