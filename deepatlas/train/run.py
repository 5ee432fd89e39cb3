"""A run directory: `config.json` (method name, data, model and train configs), checkpoints,
`model.safetensors` (latest weights + EMA), `metrics.jsonl`, `samples/`.

`start_run` writes or checks the config (a resume with a conflicting config is refused, naming the
fields); `open_run` rebuilds a trained method from a run directory for sampling and evaluation.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deepatlas import config as C
from deepatlas.data.base import DataConfig, Dataset, load_dataset
from deepatlas.errors import UserError
from deepatlas.method import Method
from deepatlas.registry import get
from deepatlas.train.atomic import write_json_atomic
from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.config import RESUMABLE_CHANGES, TrainConfig


@dataclass
class RunConfig:
    method: str
    data: DataConfig
    model: Any
    train: TrainConfig

    def to_dict(self) -> dict:
        """Plain JSON values (tuples become lists), so a fresh config compares equal to a saved one."""
        return json.loads(json.dumps({"method": self.method, "data": C.to_dict(self.data),
                                      "model": C.to_dict(self.model), "train": C.to_dict(self.train)}))

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        try:
            spec = get("method", d["method"]).obj
            return cls(d["method"], C.from_dict(DataConfig, d["data"]), C.from_dict(spec.Config, d["model"]),
                       C.from_dict(TrainConfig, d["train"]))
        except (KeyError, TypeError) as e:
            raise UserError(f"config.json is missing or has a malformed entry ({e})") from None


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise UserError(f"{run_dir} is not a run directory (no config.json); train one with `deepatlas train METHOD --out {run_dir}`")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None


def conflicts(old: dict, new: dict) -> list[str]:
    fields = [] if old["method"] == new["method"] else ["method"]
    for section in ("data", "model", "train"):
        fields += [f"{section}.{k}" for k in C.diff(old[section], new[section])
                   if not (section == "train" and k in RESUMABLE_CHANGES)]
    return fields


# What deepatlas writes in a run directory; `--fresh` deletes these and nothing else.
RUN_ENTRIES = ("checkpoints", "model.safetensors", "metrics.jsonl", "samples", "eval", "eval.json", "report.html",
               "predict", "config.json")  # config.json last: a run stopped midway is still recognised as one


def is_run(run_dir: Path) -> bool:
    """Whether run_dir holds a config.json that deepatlas wrote (a method name and its three sections)."""
    try:
        d = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(d, dict) and isinstance(d.get("method"), str)
            and all(isinstance(d.get(k), dict) for k in ("data", "model", "train")))


def remove_run(run_dir: Path) -> list[str]:
    """Delete what deepatlas wrote in a run (RUN_ENTRIES and half-written `.NAME.tmp-PID` files); the
    folder itself and anything else in it stay. Returns the names of the entries left alone."""
    run_dir = Path(run_dir)
    for p in [*run_dir.glob(".*.tmp-*"), *(run_dir / name for name in RUN_ENTRIES)]:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    return sorted(p.name for p in run_dir.iterdir())


def start_run(run_dir: Path, cfg: RunConfig, *, fresh: bool = False, main: bool = True) -> None:
    """Create run_dir, or check that it holds the same run (for resuming). `fresh` deletes an old run.

    Only a deepatlas run is ever resumed or deleted: a non-empty folder that is not one is refused, with
    or without `fresh`, so that `--out .` or a typo in --out cannot delete or mix into a user's files."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir} is a file, not a folder; choose a new or empty folder")
    if run_dir.is_dir() and not is_run(run_dir) and any(run_dir.iterdir()):
        what = "--fresh deletes only deepatlas runs; " if fresh else ""
        raise UserError(f"--out {run_dir} is not empty and holds no deepatlas run (no config.json written by "
                        f"deepatlas); {what}choose a new or empty folder")
    if fresh and main and is_run(run_dir):
        kept = remove_run(run_dir)
        if kept:
            print(f"deepatlas: --fresh deleted the run in {run_dir} and kept files it did not write: "
                  f"{', '.join(kept[:5])}{' ...' if len(kept) > 5 else ''}", file=sys.stderr)
    if path.exists():
        old = read_config(run_dir)
        bad = conflicts(old, cfg.to_dict())
        if bad:
            shown = ", ".join(f"{b} (saved {_get(old, b)!r}, now {_get(cfg.to_dict(), b)!r})" for b in bad)
            raise UserError(f"{run_dir} holds a different run: {shown}; use another --out, or --fresh to start over")
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, cfg.to_dict())


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def build_method(cfg: RunConfig, dataset: Dataset) -> Method:
    spec = get("method", cfg.method).obj
    torch.manual_seed(cfg.train.seed)  # the initial weights follow --train-seed, the same in every process
    return spec(cfg.model, dataset.info)


def open_run(run_dir: str | Path, weights: str = "ema") -> tuple[Method, Dataset, RunConfig, int]:
    """Rebuild the method of a run from its latest checkpoint; `weights` is 'ema' or 'raw'."""
    run_dir = Path(run_dir)
    cfg = RunConfig.from_dict(read_config(run_dir))
    dataset = load_dataset(cfg.data)
    method = build_method(cfg, dataset)
    saved = Checkpointer(run_dir).load()
    if saved is None:
        raise UserError(f"{run_dir} has no checkpoint yet; train it first (`deepatlas train {cfg.method} --out {run_dir}`)")
    if saved.fallback_note():
        print(f"deepatlas: warning: {saved.fallback_note()}", file=sys.stderr)
    state = saved.ema if weights == "ema" and saved.ema else saved.weights
    try:
        method.load_state_dict(state)
    except RuntimeError as e:
        raise UserError(f"{saved.folder}/model.safetensors does not fit method '{cfg.method}': {str(e).splitlines()[0]}") from None
    method.eval()
    return method, dataset, cfg, saved.step
