"""The command line: `deepatlas COMMAND ...` with the commands defined here (list, train, sample, eval,
demo) and those other modules register (registry.register_command: report, rf, generate, ...).

Every error a user can cause prints one line (`deepatlas: error: ...`) and exits 2; --debug shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sys
from pathlib import Path

from deepatlas import config as C
from deepatlas.errors import TrainingInterrupted, UserError
from deepatlas.report.arrays import FORMATS

COMMANDS = ("list", "train", "sample", "eval", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag or number is a one-line UserError like every other mistake."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _common_run_flags(p: argparse.ArgumentParser, n: int, seed_help: str) -> None:
    """The flags of `sample` and `eval` every run has; a run's own sampling options come from its SampleConfig."""
    p.add_argument("run", type=Path, nargs="?", help="run directory")
    p.add_argument("-h", "--help", action="store_true", help="show the options of RUN")
    p.add_argument("--n", type=int, default=n, help=f"number of samples or test examples (default: {n})")
    p.add_argument("--seed", type=int, default=0, help=f"{seed_help} (default: 0)")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema", help="EMA or raw weights (default: ema)")


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
    s = sub.add_parser("sample", help="draw samples from a trained run and save a PNG grid (+ npz/safetensors)",
                       add_help=False)
    _common_run_flags(s, n=64, seed_help="sampling seed")
    s.add_argument("--out", type=Path, default=None, help="PNG path (default: RUN/samples/sample.png)")
    s.add_argument("--format", choices=FORMATS, default="png",
                   help="also write the raw samples, in data units, as .npz or .safetensors beside the PNG")
    e = sub.add_parser("eval", help="evaluate a trained run with its field's metric (FID, NLL, ...)", add_help=False)
    _common_run_flags(e, n=1000, seed_help="evaluation seed: every random draw of the evaluation")
    d = sub.add_parser("demo", help="train the default diffusion model on 8x8 digits (~4 min), sample, compute FID")
    d.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (default: runs/demo)")
    d.add_argument("--steps", type=int, default=None, help="training steps (default: the demo's)")
    d.add_argument("--fresh", action="store_true", help="delete an earlier demo run in --out instead of resuming it "
                   "(only a deepatlas run is ever deleted)")
    d.add_argument("--resume-older", action="store_true",
                   help="if the newest checkpoint is damaged, resume from the newest readable one (it is set aside)")
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
    p.add_argument("--fresh", action="store_true", help="delete the deepatlas run in --out and start over (a folder "
                   "that is not a run is never deleted; files deepatlas did not write are kept)")
    p.add_argument("--resume-older", action="store_true",
                   help="if the newest checkpoint is damaged, resume from the newest readable one and set the "
                        "damaged one aside (refused without this flag)")
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
    from deepatlas.train.distributed import init_from_env, leave, main_first
    from deepatlas.train.method_defaults import run_config
    from deepatlas.train.run import build_method, start_run
    from deepatlas.train.trainer import fit

    cfg = run_config(spec, args)
    world = init_from_env()
    dataset = load_dataset(cfg.data)
    method = build_method(cfg, dataset)  # a method that refuses the data does so before anything is written
    # rank 0 alone checks and writes the run directory; the others wait for its verdict
    main_first(lambda: start_run(args.out, cfg, fresh=args.fresh), world, "checking the run directory")
    last = fit(method, dataset, cfg.train, args.out, world=world, progress=not args.no_progress,
               resume_older=args.resume_older)
    leave(world)
    if world.main:
        print(json.dumps(last))
        print(f"run saved in {args.out}")
        print(f"next: {next_command(spec.obj, args.out)}")
    return 0


def next_command(method: type, run: Path) -> str:
    """The command to run after training: `sample` for methods that draw samples, else `eval`.
    (The one place that decides; adapt it if the sampling interface changes.)"""
    samples = method.SampleConfig is not None
    return f"deepatlas {'sample' if samples else 'eval'} {run}"


def run_options(command: str, args, rest: list[str], sub: argparse.ArgumentParser):
    """Stage two of `sample`/`eval`: read RUN's config.json, then parse the rest against that method's
    SampleConfig, so that --help and the errors name only the options this run has.
    -> (method class, SampleConfig or None when no sampling flag was given) or None after --help."""
    from deepatlas.registry import get
    from deepatlas.train.run import RunConfig, read_config

    if args.run is None:
        if args.help:
            sub.print_help()
            print(f"\nRun `deepatlas {command} RUN --help` for the sampling options of that run.")
            return None
        raise UserError(f"`deepatlas {command}` needs a run directory: deepatlas {command} RUN")
    spec = get("method", RunConfig.from_dict(read_config(args.run)).method)
    cls = spec.obj.SampleConfig
    if command == "sample" and cls is None:
        raise UserError(f"method '{spec.name}' does not draw samples; try `deepatlas eval {args.run}`")
    p = _Parser(prog=f"deepatlas {command} {args.run}", description=f"{spec.name}: {spec.help}", add_help=False,
                parents=[sub], conflict_handler="resolve")
    if cls is not None:
        C.add_arguments(p, cls, title=f"{spec.name} sampling options")
    if args.help:
        p.print_help()
        return None
    ns, extra = p.parse_known_args(rest)
    flags = [a for a in extra if a.startswith("-")]
    if extra:
        own = ", ".join(C._flag("", f.name) for f in dataclasses.fields(cls)) if cls else "none"
        raise UserError(f"{(flags or extra)[0]} is not an option of a '{spec.name}' run (its sampling options: {own}; "
                        f"see `deepatlas {command} {args.run} --help`)")
    given = cls is not None and any(f.name in vars(ns) for f in dataclasses.fields(cls))
    return spec.obj, (ns if given else None)


def sample_options(method, ns):
    """The run's defaults with the given flags on top; None when no flag was given (the method's own)."""
    if ns is None:
        return method.sample_defaults()
    return C.from_args(method.SampleConfig, ns, base=C.to_dict(method.sample_defaults()))


def _subparser(top: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    return next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices[command]


def check_n(args) -> None:
    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")


def _open_with_options(command: str, args, rest: list[str], top):
    """The shared start of `sample` and `eval`: --n checked, the rest parsed against RUN's own options,
    the run opened. -> (method, dataset, cfg, step, flags namespace or None), or None after --help."""
    from deepatlas.train.run import open_run

    check_n(args)
    parsed = run_options(command, args, rest, _subparser(top, command))
    if parsed is None:
        return None
    return (*open_run(args.run, args.weights), parsed[1])


def cmd_sample(args, rest: list[str], top) -> int:
    import torch

    from deepatlas.report.arrays import save_arrays

    opened = _open_with_options("sample", args, rest, top)
    if opened is None:
        return 0
    method, dataset, cfg, step, ns = opened
    opts = sample_options(method, ns)
    out = args.out or Path(args.run) / "samples" / "sample.png"
    samples, paths = method.sample_files(args.n, torch.Generator().manual_seed(args.seed), opts, Path(out))
    if args.format != "png":
        meta = {"method": cfg.method, "step": step, "seed": args.seed, "weights": args.weights,
                "options": C.to_dict(opts)}
        paths.append(save_arrays(method.raw_samples(samples), Path(out), args.format, meta))
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_eval(args, rest: list[str], top) -> int:
    import torch

    from deepatlas.train.atomic import write_json_atomic

    opened = _open_with_options("eval", args, rest, top)
    if opened is None:
        return 0
    method, dataset, cfg, step, ns = opened
    opts = None if ns is None else sample_options(method, ns)
    torch.manual_seed(args.seed)  # draws a method makes from the global RNG follow --seed too
    folder = Path(args.run) / "eval" if method.evaluate_writes_pictures else None
    metrics = method.evaluate(dataset, args.n, torch.Generator().manual_seed(args.seed), opts, folder)
    result = {"step": step, "weights": args.weights, "seed": args.seed, **metrics}
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
        if args.command == "sample":
            return cmd_sample(args, rest, parser)
        if args.command == "eval":
            return cmd_eval(args, rest, parser)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        if args.command == "list":
            return cmd_list()
        if args.command == "demo":
            from deepatlas.demo import run_demo

            return run_demo(args.out, steps=args.steps, fresh=args.fresh, resume_older=args.resume_older)
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
