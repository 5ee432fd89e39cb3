"""Checkpoints that survive crashes: each is a folder `checkpoints/step-NNNNNNNN/` holding

- `model.safetensors`: the weights, and the EMA weights under the prefix `ema.`;
- `optimizer.pt`: optimizer states only (plain tensors and numbers, loaded with weights_only=True);
- `state.json`: the step, written last.

A folder is written under a temporary name and renamed once complete, then `checkpoints/latest` (a
one-line pointer for people and tools) is replaced atomically, and `RUN/model.safetensors` is replaced by
an atomic copy of the new weights, so a crash at any moment leaves the previous checkpoint whole.

Loading takes the newest folder that reads completely. A newer folder that does not read is never
skipped silently: the returned `Checkpoint.skipped` says which folders were passed over and why, so
that sampling can warn and resuming can refuse (a resumed run would lose the steps after the fallback).
"""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from deepatlas.errors import UserError
from deepatlas.train.atomic import fsync_dir, write_atomic, write_bytes_atomic

EMA_PREFIX = "ema."


@dataclass
class Checkpoint:
    step: int
    folder: Path
    weights: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimizers: dict
    skipped: tuple[str, ...] = ()  # "step-NNNNNNNN: why" for each newer folder that could not be read

    def fallback_note(self) -> str | None:
        """One line saying which newer checkpoints were passed over and why, or None when none were."""
        if not self.skipped:
            return None
        return f"the newest checkpoint is damaged ({'; '.join(self.skipped)}); fell back to step {self.step} ({self.folder.name})"


def _name(step: int) -> str:
    return f"step-{step:08d}"


def save_weights(path: Path, weights: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None,
                 metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().clone() for k, v in weights.items()}
    tensors.update({EMA_PREFIX + k: v.detach().contiguous().clone() for k, v in (ema or {}).items()})
    # serialise in memory, then write plain bytes: a full disk is then always an OSError (ENOSPC), not
    # a library-specific error from inside the serialiser (torch.save raises RuntimeError there)
    write_bytes_atomic(path, save_bytes(tensors, metadata=metadata))


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weights and EMA weights from a safetensors file; never executes code from the file."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    ema = {k[len(EMA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EMA_PREFIX)}
    raw = {k: v for k, v in tensors.items() if not k.startswith(EMA_PREFIX)}
    return raw, ema


def load_optimizer_state(path: Path) -> dict:
    """Optimizer states saved by torch.save, read with weights_only=True: tensors, numbers, strings and
    containers only; a pickle that would build any other object (run code) is refused, not executed."""
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols in damaged files
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: missing") from None
    except Exception as e:  # noqa: BLE001 - every way a foreign or damaged file can fail to parse
        why = "refused: it holds objects other than tensors" if isinstance(e, pickle.UnpicklingError) else \
            (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"{path}: not a readable optimizer state ({why})") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a readable optimizer state (a {type(state).__name__}, not a dict)")
    return state


class Checkpointer:
    def __init__(self, run_dir: Path, keep: int = 2):
        self.root = Path(run_dir) / "checkpoints"
        self.keep = keep

    def clean_partial(self) -> None:
        """Remove what a crash left half-written: `.tmp-*` checkpoint folders, and the `.NAME.tmp-PID`
        files of atomic writes (latest, model.safetensors, metrics.jsonl, config.json) in the run."""
        for folder in (self.root, self.root.parent):
            if folder.is_dir():
                for p in [*folder.glob(".tmp-*"), *folder.glob(".*.tmp-*")]:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    def save(self, step: int, weights, ema, optimizers: dict) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / _name(step)
        tmp = self.root / f".tmp-{_name(step)}-{os.getpid()}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            save_weights(tmp / "model.safetensors", weights, ema, {"step": str(step)})
            buf = io.BytesIO()
            torch.save(optimizers, buf)
            write_bytes_atomic(tmp / "optimizer.pt", buf.getvalue())
            write_bytes_atomic(tmp / "state.json", json.dumps({"step": step}).encode())
            fsync_dir(tmp)
            if final.exists():  # the same step written again (a resumed run re-saving): swap it out
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(self.root)
            write_bytes_atomic(self.root / "latest", (final.name + "\n").encode())
            # a copy, never a hard link: editing RUN/model.safetensors must not change the checkpoint
            write_atomic(self.root.parent / "model.safetensors", lambda p: shutil.copyfile(final / "model.safetensors", p))
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            why = "the disk is full" if e.errno == errno.ENOSPC else e.strerror or str(e)
            prev = self.latest_step()
            kept = f"checkpoint of step {prev} is intact" if prev is not None else "no earlier checkpoint exists"
            raise UserError(f"could not write the checkpoint of step {step} in {self.root}: {why}; the {kept}") from None
        self._prune()
        return final

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.glob("step-*") if p.is_dir()), reverse=True)

    def _prune(self) -> None:
        for old in self._folders()[self.keep:]:
            shutil.rmtree(old, ignore_errors=True)

    def set_aside_newer(self, saved: Checkpoint) -> list[Path]:
        """Rename the folders newer than `saved` (the damaged ones it fell back from) to
        `damaged-step-N`: kept for inspection, never loaded or pruned."""
        moved = []
        for folder in self._folders():
            if folder.name > saved.folder.name:
                target, n = folder.with_name(f"damaged-{folder.name}"), 1
                while target.exists():
                    target, n = folder.with_name(f"damaged-{folder.name}.{n}"), n + 1
                os.rename(folder, target)
                moved.append(target)
        fsync_dir(self.root)
        return moved

    def latest_step(self) -> int | None:
        for folder in self._folders():
            try:
                return _read_step(folder)
            except (OSError, UserError):
                continue
        return None

    def load(self) -> Checkpoint | None:
        """The newest checkpoint that reads completely (see `Checkpoint.skipped`), or None when there is none."""
        errors = []
        for folder in self._folders():
            try:
                step = _read_step(folder)
                weights, ema = load_weights(folder / "model.safetensors")
                optimizers = load_optimizer_state(folder / "optimizer.pt")
                return Checkpoint(step, folder, weights, ema, optimizers, tuple(errors))
            except (OSError, UserError) as e:
                errors.append(f"{folder.name}: {e}")
        if errors:
            raise UserError(f"no readable checkpoint in {self.root} ({'; '.join(errors)})")
        return None


def _read_step(folder: Path) -> int:
    """The step recorded in state.json (written last, so its presence marks a complete checkpoint)."""
    try:
        step = json.loads((folder / "state.json").read_bytes())["step"]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise UserError(f"{folder / 'state.json'}: not a checkpoint state ({type(e).__name__})") from None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise UserError(f"{folder / 'state.json'}: step must be a non-negative integer, got {step!r}")
    return step
