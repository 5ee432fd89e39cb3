"""Data parallelism through torch.distributed, launched by torchrun (which sets RANK, WORLD_SIZE,
MASTER_ADDR, ...). Each process trains on its slice of the global batch; gradients are averaged
across processes after every backward pass, so N processes x batch B follow the trajectory of one
process with batch N*B. gloo on CPU, nccl when CUDA is available. Without torchrun: one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_from_env() -> World:
    """Join the process group torchrun describes in the environment; a single process otherwise."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return World(dist.get_rank(), dist.get_world_size())


def average_gradients(params: list[torch.nn.Parameter], world: World) -> None:
    if world.size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def any_flag(flag: bool, world: World) -> bool:
    """True on every rank if any rank raised the flag (used for stop signals)."""
    if world.size == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t)
    return bool(t.item() > 0)
