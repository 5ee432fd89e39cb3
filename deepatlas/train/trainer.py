"""The one training loop every method shares.

The method provides `loss(batch)` (or `train_phases` for several optimizers, with `batches_per_step`
batches of examples per step); the loop owns AdamW,
learning-rate warm-up, gradient clipping, the EMA, checkpoints, metrics, sample pictures, stop signals
and the NaN guard. Every step's randomness is seeded from (seed, step): the data order and the noise a
method draws do not depend on where a run was resumed, so a resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from deepatlas.errors import TrainingDiverged, TrainingInterrupted, UserError
from deepatlas.method import Method
from deepatlas.train.checkpoint import Checkpointer
from deepatlas.train.config import TrainConfig
from deepatlas.train.distributed import (World, all_reduce_step, average_scalars, broadcast_module, main_first,
                                         same_on_all)
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


def make_optimizers(method: Method, cfg: TrainConfig, impl: str = "fused") -> dict[str, torch.optim.Optimizer]:
    """One AdamW per parameter group of the method (GANs: one per network).

    `impl` "fused" (one kernel over all tensors; on CPU 3.7x-7.5x faster per optimizer step than the
    for-loop, and the weights agree to ~1 ulp, see bench/RESULTS.md) where every parameter is a float tensor
    on a CPU or CUDA device, else "foreach" (bitwise equal to the for-loop, ~1.2x); "for-loop" on request."""
    def build(params):
        params = list(params)
        how = impl
        if how == "fused" and not all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
            how = "foreach"
        kw = {"fused": True} if how == "fused" else {"foreach": how == "foreach"}
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay, **kw)
    return {name: build(params) for name, params in method.optim_groups().items()}


def fit(method: Method, data, cfg: TrainConfig, run_dir: str | Path, world: World = World(),
        progress: bool = True, resume_older: bool = False) -> dict:
    """Train `method` on `data.train` up to cfg.steps, resuming from run_dir's checkpoint if there is one.
    Returns the last logged metrics.

    When the newest checkpoint is damaged, resuming from an older one would silently lose steps: that is
    refused unless `resume_older`, which sets the damaged folders aside (`checkpoints/damaged-step-N`)."""
    run_dir = Path(run_dir)
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    method.to(world.device)
    broadcast_module(method, world)  # identical replicas even where each process drew its own init
    ckpt = Checkpointer(run_dir, cfg.keep)
    log = MetricsLog(run_dir / "metrics.jsonl", enabled=world.main)
    opts = make_optimizers(method, cfg)
    ema = EMA(method, cfg.ema_decay) if cfg.ema_decay > 0 else None

    start = 0
    main_first(ckpt.clean_partial, world, "cleaning up after a crash")  # also a barrier: no rank reads early
    saved = ckpt.load()
    if not same_on_all(-1 if saved is None else saved.step, world):
        raise UserError(f"the processes found different checkpoints in {ckpt.root}; is another run writing there?")
    if saved is not None and saved.skipped:
        if not resume_older:
            raise UserError(f"{saved.fallback_note()}; resuming would redo the steps after {saved.step}: re-run "
                            "with --resume-older to accept that, or --fresh to start over")
        if world.main:
            print(f"deepatlas: warning: {saved.fallback_note()}; resuming from there", file=sys.stderr)
        main_first(lambda: ckpt.set_aside_newer(saved), world, "setting damaged checkpoints aside")
    if saved is not None:
        _restore(method, ema, opts, saved)
        start = saved.step
    log.truncate_after(start)  # also when no checkpoint survived: lines of a killed first attempt go

    def save(step: int) -> None:
        def write() -> None:
            ckpt.save(step, method.state_dict(), ema.state_dict() if ema else None,
                      {k: o.state_dict() for k, o in opts.items()})
            if ema is not None:
                _with_weights(method, ema.state_dict(), lambda: method.write_samples(run_dir / "samples", step))
            else:
                method.write_samples(run_dir / "samples", step)
        main_first(write, world, f"writing the checkpoint of step {step}")

    # a step takes batches_per_step() batches (WGAN-GP: one fresh real batch per critic update), one data order
    order = BatchOrder(len(data.train), cfg.batch_size * method.batches_per_step() * world.size, cfg.seed)
    last: dict = {}
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and world.main), dynamic_ncols=True,
               desc=getattr(method, "method_name", type(method).__name__))
    t0, done_since_log = time.perf_counter(), 0
    with _StopSignals() as signals:
        for step in range(start, cfg.steps):
            batch = _to(data.train.get(order.indices(step, world)), world.device)
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
                finite = bool(torch.isfinite(loss.detach()).all())
                if not finite and world.size == 1:
                    _diverged(ckpt, f"loss became {loss.detach().float().sum().item()}", step, group)
                loss.backward()
                params = [p for pg in opt.param_groups for p in pg["params"]]
                # one all-reduce per backward: the averaged gradients, plus two votes every rank must agree on
                bad, stop_votes = all_reduce_step(params, world, [0.0 if finite else 1.0,
                                                                  float(signals.received is not None)])
                if bad:  # checked before opt.step(): the weights are still those of the last good step
                    value = loss.detach().float().sum().item() if not finite else "non-finite"
                    _diverged(ckpt, f"loss became {value} on {int(bad)} of {world.size} processes", step, group)
                if cfg.grad_clip > 0:
                    norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
                    if not math.isfinite(norm):  # the same averaged gradients on every rank: no vote needed
                        _diverged(ckpt, f"gradient norm became {norm}", step, group)
                    record[_key(group, "grad_norm")] = norm
                opt.step()
                record.update({_key(group, k) if k == "loss" and len(opts) > 1 else k: _scalar(v)
                               for k, v in out.items()})
            if ema is not None:
                ema.update(method, step)
            done = step + 1
            done_since_log += 1
            bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                record = average_scalars(record, world)  # the global batch's numbers, not rank 0's slice
                dt = time.perf_counter() - t0
                last = {"step": done, "lr": learning_rate(cfg, step), **record,
                        "steps_per_s": done_since_log / max(dt, 1e-9)}
                log.write(last)
                bar.set_postfix({k: f"{v:.4g}" for k, v in last.items() if k in ("loss", "steps_per_s") or k.endswith("_loss")})
                t0, done_since_log = time.perf_counter(), 0
            stop = stop_votes > 0  # from the last phase's all-reduce: the same on every rank
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


def _diverged(ckpt: Checkpointer, what: str, step: int, group: str):
    prev = ckpt.latest_step()
    where = f"the checkpoint of step {prev} is intact" if prev is not None else "no checkpoint was written yet"
    raise TrainingDiverged(f"{what} at step {step + 1} ({group}); stopped, {where}; "
                           "try a lower --train-lr or a --train-grad-clip")


def _restore(method: Method, ema, opts: dict, saved) -> None:
    """Load a checkpoint into the method, its EMA and optimizers; a checkpoint of another model is a
    UserError naming the folder, not a traceback."""
    try:
        method.load_state_dict(saved.weights)
        if ema is not None and saved.ema:
            ema.load_state_dict(saved.ema)
        for name, opt in opts.items():
            opt.load_state_dict(saved.optimizers[name])
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{saved.folder} does not fit this method ({msg}); use another --out, "
                        "or --fresh to start over") from None


def _to(batch, device: str):
    """Move a batch's tensors to the training device (nothing to do on CPU)."""
    if device == "cpu" or not isinstance(batch, dict):
        return batch
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


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
