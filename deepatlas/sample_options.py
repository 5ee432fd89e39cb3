"""Checks shared by every SampleConfig: an option is honoured by the chosen sampler or refused.

Options that only some samplers use default to None ("not given"); `refuse_unused` raises a one-line
error naming the option and the sampler when a given option is not one the sampler reads.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Any

import torch

from deepatlas.config import check
from deepatlas.errors import UserError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def refuse_unused(opts: Any, sampler: str, used_by: dict[str, tuple[str, ...]]) -> None:
    for name, samplers in used_by.items():
        if getattr(opts, name) is not None and sampler not in samplers:
            raise UserError(f"{flag(name)} is not an option of sampler '{sampler}' "
                            f"(only {', '.join(samplers)} use it); drop {flag(name)} or pick one of those samplers")


def check_type(opts: Any, cls: type) -> Any:
    """None -> the defaults; anything else must be the method's own SampleConfig."""
    if opts is None:
        return cls()
    if not isinstance(opts, cls):
        raise UserError(f"sampling options must be a {cls.__qualname__}, got {type(opts).__qualname__}")
    return check(opts)  # types, ranges and choices, as for flags


def with_values(opts: Any, **values) -> Any:
    return dataclasses.replace(opts, **values)


@contextmanager
def global_rng_from(generator: torch.Generator | None, device: torch.device):
    """Run samplers that draw from torch's global RNG (the text samplers) with that RNG seeded from
    `generator`, and put the global state back afterwards: the same generator state gives the same
    draws, a different seed different ones. None leaves the global RNG as it is."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
