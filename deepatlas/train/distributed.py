"""Data parallelism through torch.distributed, launched by torchrun (which sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, ...). Each process trains on its slice of the global batch; gradients are
averaged across processes after every backward pass, so N processes x batch B follow the trajectory
of one process with batch N*B. gloo on CPU, nccl when CUDA is available. Without torchrun: one process.

Why not `DistributedDataParallel`: methods with several optimizers (GANs) run several backward passes
per step, each for one parameter group, which DDP's hooks do not model; one explicit all-reduce of
the group's gradients after each backward is exact for every method, and on CPU/gloo the overlap DDP
buys is small.

Only rank 0 writes (config, checkpoints, metrics, pictures). Every decision that ends or changes the
loop (a stop signal, a non-finite loss, a failed write on rank 0) is agreed by a collective, so no
rank waits forever for a peer that has left.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from deepatlas.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


class PeerFailed(UserError):
    """Another rank (rank 0) failed; it printed the reason."""


def pick_device(local_rank: int = 0) -> str:
    """`DEEPATLAS_DEVICE` if set (e.g. `cpu`), else this process's GPU when CUDA is present, else cpu."""
    forced = os.environ.get("DEEPATLAS_DEVICE")
    if forced:
        return forced
    return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"


def init_from_env() -> World:
    """Join the process group torchrun describes in the environment; a single process otherwise."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World(device=pick_device())
    device = pick_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        atexit.register(_leave)
    return World(dist.get_rank(), dist.get_world_size(), device)


def leave(world: World) -> None:
    """End of a run that finished on every rank: wait until every rank is here, then leave the group.
    Without the barrier one rank could close its connections while another still finishes its last
    collective or is writing, the likely cause of an abort at exit seen in ~1 run of 15 (bench/torchrun_teardown.py)."""
    if world.size > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _leave() -> None:  # at exit, after an error: no barrier (a failed rank would wait for peers that left)
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_step(params: list[torch.nn.Parameter], world: World, votes: list[float]) -> list[float]:
    """g <- (1/N) sum over ranks of g for every parameter, and each vote summed over ranks, in one
    all-reduce. A parameter without a gradient on some rank counts as zero there and gets the average
    on every rank where any rank had one, so all replicas take the same optimizer step."""
    if world.size == 1:
        return list(votes)
    has = [p.grad is not None for p in params]
    parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    tail = torch.tensor([float(h) for h in has] + list(votes), device=world.device)
    flat = torch.cat(parts + [tail.to(parts[0].dtype if parts else tail.dtype)])
    dist.all_reduce(flat)
    offset = 0
    counts = flat[flat.numel() - len(has) - len(votes): flat.numel() - len(votes)].tolist()
    for p, n in zip(params, counts):
        if n > 0:
            g = flat[offset: offset + p.numel()].view_as(p) / world.size
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
        offset += p.numel()
    return flat[flat.numel() - len(votes):].tolist()


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    """g <- (1/N) sum over ranks of g, for every parameter with a gradient."""
    all_reduce_step(params, world, [])


def average_scalars(record: dict[str, float], world: World) -> dict[str, float]:
    """The mean of each logged number over ranks (the loss of the global batch, not of rank 0's slice).
    Every rank must hold the same keys, which holds because every rank runs the same method code."""
    if world.size == 1 or not record:
        return record
    keys = sorted(record)
    t = torch.tensor([float(record[k]) for k in keys], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    t /= world.size
    return dict(zip(keys, t.tolist()))


def any_flag(flag: bool, world: World) -> bool:
    """True on every rank if any rank raised the flag."""
    if world.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def same_on_all(value: int, world: World) -> bool:
    """Whether every rank holds the same integer."""
    if world.size == 1:
        return True
    t = torch.tensor([value, -value], device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t[0]) == -int(t[1])


def main_first(fn: Callable[[], object], world: World, what: str) -> None:
    """Run `fn` on rank 0 only; the other ranks wait for it and raise PeerFailed if it failed, so an
    error on rank 0 (a conflicting config, a full disk) stops every rank instead of leaving them blocked."""
    if world.size == 1:
        fn()
        return
    error: BaseException | None = None
    if world.main:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below, after telling the peers
            error = e
    if any_flag(error is not None, world):
        if error is not None:
            raise error
        raise PeerFailed(f"rank 0 failed while {what} (its message is above); rank {world.rank} stopped too")


def broadcast_module(module: torch.nn.Module, world: World) -> None:
    """Copy rank 0's parameters and buffers to every rank, so replicas start identical however each
    process built or loaded its copy."""
    if world.size == 1:
        return
    with torch.no_grad():
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)
