"""The command line: `deepatlas COMMAND ...` with the commands defined here (list, train, sample, eval,
demo) and those other modules register (registry.register_command: report, rf, generate, ...).

Every error a user can cause prints one line (`deepatlas: error: ...`) and exits 2; --debug shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import inspect
import json
import sys
from pathlib import Path

from deepatlas import config as C
from deepatlas.errors import TrainingInterrupted, UserError

COMMANDS = ("list", "train", "sample", "eval", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag or number is a one-line UserError like every other mistake."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


class _OneLinePerCommand(argparse.RawDescriptionHelpFormatter):
    """Each command on one line, its help after it however long: argparse would wrap the help to the
    terminal and put a long name (make-scenes) on a line of its own, as it measures sub-commands
    without their indentation."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=30, width=10_000)

    def add_argument(self, action):
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS and hasattr(action, "_get_subactions"):
            names = [len(self._format_action_invocation(a)) for a in action._get_subactions()]
            self._action_max_length = max(self._action_max_length,
                                          max(names, default=0) + self._current_indent + self._indent_increment)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="deepatlas", description="deepatlas: the methods of the study notes, trained, sampled and evaluated.",
                formatter_class=_OneLinePerCommand,
                                epilog="Run `deepatlas COMMAND --help` for a command's options, "
                                       "`deepatlas train METHOD --help` for a method's.")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.add_parser("list", help="every method, dataset and sampler, one line each")
    t = sub.add_parser("train", help="train a method: deepatlas train METHOD --data NAME --out DIR",
                       add_help=False)
    t.add_argument("method", nargs="?", help="method name (see `deepatlas list`)")
    t.add_argument("-h", "--help", action="store_true", help="show the options of METHOD")
    s = sub.add_parser("sample", help="draw samples from a trained run and save a PNG grid")
    s.add_argument("run", type=Path, help="run directory")
    s.add_argument("--n", type=int, default=64, help="number of samples (default: 64)")
    s.add_argument("--sampler", default=None, help="sampler name (see `deepatlas list`); default: the method's")
    s.add_argument("--steps", type=int, default=None, help="sampling steps (default: the sampler's)")
    s.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight w (class-conditional runs)")
    s.add_argument("--label", type=int, default=None, help="class to sample (class-conditional runs); default: all classes in turn")
    s.add_argument("--eta", type=float, default=None, help="ancestral noise of ddim (0: deterministic, 1: DDPM-like)")
    s.add_argument("--churn", type=float, default=None, help="EDM churn S_churn of the heun sampler (default: 0)")
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    s.add_argument("--weights", choices=("ema", "raw"), default="ema", help="EMA or raw weights (default: ema)")
    s.add_argument("--out", type=Path, default=None, help="PNG path (default: RUN/samples/sample.png)")
    s.add_argument("--scales", type=float, nargs="+", default=None, help="detectors: image-pyramid test scales, e.g. 1 1.5 2")
    e = sub.add_parser("eval", help="evaluate a trained run with its field's metric (FID, NLL, ...)")
    e.add_argument("run", type=Path, help="run directory")
    e.add_argument("--n", type=int, default=1000, help="samples or test examples to use (default: 1000)")
    e.add_argument("--weights", choices=("ema", "raw"), default="ema", help="EMA or raw weights (default: ema)")
    e.add_argument("--seed", type=int, default=0, help="evaluation seed (default: 0)")
    e.add_argument("--scales", type=float, nargs="+", default=None, help="detectors: image-pyramid test scales, e.g. 1 1.5 2")
    d = sub.add_parser("demo", help="train the default diffusion model on 8x8 digits (~4 min), sample, compute FID")
    d.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (default: runs/demo)")
    d.add_argument("--steps", type=int, default=None, help="training steps (default: the demo's)")
    d.add_argument("--fresh", action="store_true", help="delete an earlier demo run instead of resuming it")
    from deepatlas.registry import table

    runners = {}
    for name, entry in sorted(table("command").items()):
        runners[name] = entry.obj(sub.add_parser(name, help=entry.help, description=entry.help))
    p.set_defaults(_runners=runners)
    return p


def _train_parser(method: str):
    from deepatlas.data.base import DataConfig
    from deepatlas.registry import get
    from deepatlas.train.config import TrainConfig
    from deepatlas.train.method_defaults import data_fields, run_config

    spec = get("method", method)
    cfg = run_config(spec)  # what a run without flags uses: the help prints these defaults
    datasets = " | ".join(spec.obj.datasets)
    p = _Parser(prog=f"deepatlas train {method}", description=f"{spec.name}: {spec.help}\ndatasets: {datasets}",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="run directory (resumed if it holds the same run)")
    p.add_argument("--fresh", action="store_true", help="delete an existing run in --out and start over")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--data", dest="data_name", metavar="NAME", default=argparse.SUPPRESS,
                   help=f"dataset: {datasets} (default: {cfg.data.name})")
    C.add_arguments(p, DataConfig, prefix="data_", title="data (the options the datasets above read)",
                    defaults=C.to_dict(cfg.data), shown=data_fields(spec.obj), skip=("name",))
    C.add_arguments(p, spec.obj.Config, prefix="model_", title=f"{method} model", defaults=C.to_dict(cfg.model))
    C.add_arguments(p, TrainConfig, prefix="train_", title="training", defaults=C.to_dict(cfg.train))
    return p, spec


def cmd_list() -> int:
    from deepatlas.registry import table

    for kind in ("method", "dataset", "sampler"):
        print(f"{kind}s:")
        for e in sorted(table(kind).values(), key=lambda e: (e.family, e.name)):
            print(f"  {e.name:<18} [{e.family}] {e.help}")
    return 0


def cmd_train(rest: list[str], method: str | None, want_help: bool) -> int:
    from deepatlas.registry import table

    if not method:
        print("usage: deepatlas train METHOD --out DIR [options]\n\nmethods:")
        for e in sorted(table("method").values(), key=lambda e: e.name):
            print(f"  {e.name:<18} {e.help}")
        return 0 if want_help else 2
    p, spec = _train_parser(method)
    if want_help:
        p.print_help()
        return 0
    args = p.parse_args(rest)
    return run_training(args, spec)


def run_training(args, spec) -> int:
    from deepatlas.data.base import load_dataset
    from deepatlas.train.distributed import init_from_env, main_first
    from deepatlas.train.method_defaults import run_config
    from deepatlas.train.run import build_method, start_run
    from deepatlas.train.trainer import fit

    cfg = run_config(spec, args)
    world = init_from_env()
    dataset = load_dataset(cfg.data)
    method = build_method(cfg, dataset)  # a method that refuses the data does so before anything is written
    # rank 0 alone checks and writes the run directory; the others wait for its verdict
    main_first(lambda: start_run(args.out, cfg, fresh=args.fresh), world, "checking the run directory")
    last = fit(method, dataset, cfg.train, args.out, world=world, progress=not args.no_progress)
    if world.main:
        print(json.dumps(last))
        print(f"run saved in {args.out}")
        print(f"next: {next_command(spec.obj, args.out)}")
    return 0


def next_command(method: type, run: Path) -> str:
    """The command to run after training: `sample` for methods that draw samples, else `eval`.
    (The one place that decides; adapt it if the sampling interface changes.)"""
    samples = getattr(method, "SampleConfig", None) is not None or hasattr(method, "sample_cli")
    return f"deepatlas {'sample' if samples else 'eval'} {run}"


def cmd_sample(args) -> int:
    from deepatlas.registry import get
    from deepatlas.train.run import open_run

    for flag, value in (("--n", args.n), ("--steps", args.steps)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    if args.sampler is not None:
        get("sampler", args.sampler)  # an unknown name fails here, with the closest one suggested
    method, dataset, cfg, step = open_run(args.run, args.weights)
    if not hasattr(method, "sample_cli"):
        raise UserError(f"method '{cfg.method}' does not draw samples; try `deepatlas eval {args.run}`")
    out = args.out or Path(args.run) / "samples" / "sample.png"
    opts = {k: v for k, v in vars(args).items()
            if k in ("sampler", "steps", "guidance", "label", "eta", "churn", "scales") and v is not None}
    path = method.sample_cli(out, args.n, args.seed, **opts)
    print(f"wrote {path}")
    return 0


def cmd_eval(args) -> int:
    import inspect

    import torch

    from deepatlas.train.atomic import write_json_atomic
    from deepatlas.train.run import open_run

    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    method, dataset, cfg, step = open_run(args.run, args.weights)
    torch.manual_seed(args.seed)
    opts = {}
    if "folder" in inspect.signature(method.evaluate).parameters:  # methods that also write pictures
        opts["folder"] = Path(args.run) / "eval"
    if args.scales:
        if "scales" not in inspect.signature(method.evaluate).parameters:
            raise UserError(f"--scales applies to detectors; method '{cfg.method}' has no multi-scale test")
        if min(args.scales) <= 0:
            raise UserError(f"--scales must be positive, got {args.scales}")
        opts["scales"] = args.scales
    result = {"step": step, "weights": args.weights, **method.evaluate(dataset, args.n, **opts)}
    write_json_atomic(Path(args.run) / "eval.json", result)
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = _parser()
        args, rest = parser.parse_known_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "train":
            return cmd_train(rest, args.method, args.help)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "list":
            return cmd_list()
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "demo":
            from deepatlas.demo import run_demo

            return run_demo(args.out, steps=args.steps, fresh=args.fresh)
        return args._runners[args.command](args)
    except TrainingInterrupted as e:
        print(f"deepatlas: {e}", file=sys.stderr)
        return 130
    except UserError as e:
        if debug:
            raise
        print(f"deepatlas: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepatlas: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a read-only or missing folder: say which file, not a traceback
        if debug:
            raise
        what = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
        where = f" ({e.filename})" if e.filename else ""
        print(f"deepatlas: error: {what}{where}", file=sys.stderr)
        return 2
