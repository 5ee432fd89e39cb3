"""The one training loop every method shares.

The method provides `loss(batch)` (or `train_phases` for several optimizers); the loop owns AdamW,
learning-rate warm-up, gradient clipping, the EMA, checkpoints, metrics, sample pictures, stop signals
and the NaN guard. Every step's randomness is seeded from (seed, step): the data order and the noise a
method draws do not depend on where a run was resumed, so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path

import torch
from tqdm import tqdm

from deepatlas.errors import TrainingDiverged, TrainingInterrupted
from deepatlas.method import Method
from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.config import TrainConfig
from deepatlas.train.distributed import World, any_flag, average_gradients
from deepatlas.train.ema import EMA
from deepatlas.train.metrics import MetricsLog


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to cfg.lr, then constant or cosine decay to 10% of it."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.lr_decay == "cosine":
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
    return cfg.lr


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    return (seed * 1_000_003 + step * 7919 + stream) % (2**63 - 1)


class BatchOrder:
    """Global batch of step k = positions k*G .. k*G+G-1 in a sequence of per-epoch permutations."""

    def __init__(self, n: int, global_batch: int, seed: int):
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            g = torch.Generator().manual_seed(step_seed(self.seed, epoch, stream=1))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def indices(self, step: int, world: World) -> torch.Tensor:
        pos = torch.arange(step * self.global_batch, (step + 1) * self.global_batch)
        epochs = pos // self.n
        idx = torch.empty_like(pos)
        for e in epochs.unique().tolist():
            sel = epochs == e
            idx[sel] = self._perm(e)[pos[sel] % self.n]
        local = self.global_batch // world.size
        return idx[world.rank * local: (world.rank + 1) * local]


class _StopSignals:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and stops at the end of the current step."""

    def __init__(self):
        self.received: str | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fit(method: Method, data, cfg: TrainConfig, run_dir: str | Path, world: World = World(),
        progress: bool = True) -> dict:
    """Train `method` on `data.train` up to cfg.steps, resuming from run_dir's checkpoint if there is one.
    Returns the last logged metrics."""
    run_dir = Path(run_dir)
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = Checkpointer(run_dir, cfg.keep)
    log = MetricsLog(run_dir / "metrics.jsonl", enabled=world.main)
    groups = method.optim_groups()
    opts = {name: torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                    weight_decay=cfg.weight_decay) for name, params in groups.items()}
    ema = EMA(method, cfg.ema_decay) if cfg.ema_decay > 0 else None

    start = 0
    if world.main:
        ckpt.clean_partial()
    saved = ckpt.load()
    if saved is not None:
        method.load_state_dict(saved.weights)
        if ema is not None and saved.ema:
            ema.load_state_dict(saved.ema)
        for name, opt in opts.items():
            opt.load_state_dict(saved.optimizers[name])
        start = saved.step
        log.truncate_after(start)

    def save(step: int) -> None:
        if world.main:
            ckpt.save(step, method.state_dict(), ema.state_dict() if ema else None,
                      {k: o.state_dict() for k, o in opts.items()})
            if ema is not None:
                _with_weights(method, ema.state_dict(), lambda: method.write_samples(run_dir / "samples", step))
            else:
                method.write_samples(run_dir / "samples", step)

    order = BatchOrder(len(data.train), cfg.batch_size * world.size, cfg.seed)
    last: dict = {}
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and world.main), dynamic_ncols=True,
               desc=getattr(method, "method_name", type(method).__name__))
    t0, done_since_log = time.perf_counter(), 0
    with _StopSignals() as signals:
        for step in range(start, cfg.steps):
            batch = data.train.get(order.indices(step, world))
            torch.manual_seed(step_seed(cfg.seed, step, stream=2 + world.rank))
            method.train()
            record: dict = {}
            for group, closure in method.train_phases(batch):
                opt = opts[group]
                for pg in opt.param_groups:
                    pg["lr"] = learning_rate(cfg, step)
                opt.zero_grad(set_to_none=True)
                out = closure()
                loss = out["loss"]
                if not torch.isfinite(loss.detach()).all():
                    prev = ckpt.latest_step()
                    where = f"the checkpoint of step {prev} is intact" if prev is not None else "no checkpoint was written yet"
                    raise TrainingDiverged(f"loss became {loss.item()} at step {step + 1} ({group}); stopped, {where}; "
                                           "try a lower --lr or a --grad-clip")
                loss.backward()
                params = [p for pg in opt.param_groups for p in pg["params"]]
                average_gradients(params, world)
                if cfg.grad_clip > 0:
                    record[_key(group, "grad_norm")] = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
                opt.step()
                record.update({_key(group, k) if k == "loss" and len(opts) > 1 else k: _scalar(v)
                               for k, v in out.items()})
            if ema is not None:
                ema.update(method, step)
            done = step + 1
            done_since_log += 1
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                dt = time.perf_counter() - t0
                last = {"step": done, "lr": learning_rate(cfg, step), **record,
                        "steps_per_s": done_since_log / max(dt, 1e-9)}
                log.write(last)
                bar.set_postfix({k: f"{v:.4g}" for k, v in last.items() if k in ("loss", "steps_per_s") or k.endswith("_loss")})
                t0, done_since_log = time.perf_counter(), 0
            stop = any_flag(signals.received is not None, world)
            if done % cfg.ckpt_every == 0 or done == cfg.steps or stop:
                save(done)
            if stop:
                bar.close()
                raise TrainingInterrupted(f"stopped by {signals.received or 'a signal'} at step {done}; "
                                          f"checkpoint saved in {run_dir}; run the same command to resume")
    bar.close()
    if start >= cfg.steps and saved is not None:
        last = {"step": start}
    return last


def _scalar(v) -> float:
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)


def _key(group: str, name: str) -> str:
    return name if group == "model" else f"{group}_{name}"


def _with_weights(module: torch.nn.Module, state: dict, fn):
    """Run fn with `state` loaded into module, then put the training weights back."""
    current = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.load_state_dict(state)
    try:
        return fn()
    finally:
        module.load_state_dict(current)
