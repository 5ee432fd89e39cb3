"""`deepatlas generate RUN --prompt TEXT`: continue a prompt with any trained text model, printed.

The same sampling as `deepatlas sample RUN` (the method's `sample(n, generator, opts)`), with the run's
own options: `deepatlas generate RUN --help` lists them (e.g. --sampler and --steps for the diffusion
LMs, --temperature/--top-k/--top-p for the AR model); an option the run does not have is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from deepatlas.errors import UserError
from deepatlas.registry import register_command


@register_command("generate", "language", "continue a prompt with a trained text model: deepatlas generate RUN --prompt TEXT")
def configure(p: argparse.ArgumentParser):
    common = argparse.ArgumentParser(add_help=False)  # what every run has; the rest is the run's SampleConfig
    common.add_argument("run", type=Path, nargs="?", help="run directory of a text model")
    common.add_argument("--n", type=int, default=1, help="number of continuations (default: 1)")
    common.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    common.add_argument("--weights", choices=("ema", "raw"), default="ema", help="EMA or raw weights (default: ema)")
    for action in common._actions:
        p._add_action(action)
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="the run's sampling options: --prompt, --length, ... (see `deepatlas generate RUN --help`)")

    def run(args) -> int:
        from deepatlas.cli import check_n, run_options, sample_options
        from deepatlas.language.language_model import LanguageModel
        from deepatlas.train.run import open_run

        check_n(args)
        rest = list(args.options)
        args.help = any(a in ("-h", "--help") for a in rest)
        parsed = run_options("generate", args, [a for a in rest if a not in ("-h", "--help")], common)
        if parsed is None:
            return 0
        cls, ns = parsed
        if not issubclass(cls, LanguageModel):
            raise UserError(f"{args.run} holds a '{cls.method_name}' run, not a text model; "
                            f"try `deepatlas sample {args.run}`")
        method, dataset, cfg, step = open_run(args.run, args.weights)
        out = method.sample(args.n, torch.Generator().manual_seed(args.seed), sample_options(method, ns))
        for row in out:
            print(method.tokenizer.decode(row))
            if args.n > 1:
                print("-----")
        return 0

    return run
