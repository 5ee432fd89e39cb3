"""Names -> methods, datasets and samplers. Each module registers what it defines with a decorator;
`load_all()` imports the family packages so that `deepatlas list` sees everything.

To add a family, write its package and add it to FAMILIES.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from deepatlas.errors import unknown

FAMILIES = (
    "deepatlas.data",
    "deepatlas.diffusion",
    "deepatlas.discrete",
    "deepatlas.language",
    "deepatlas.generative",
    "deepatlas.report",
    "deepatlas.representation",
    "deepatlas.vision",
    "deepatlas.pointcloud",
    "deepatlas.objectives",
)


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    help: str
    obj: Any


_TABLES: dict[str, dict[str, Entry]] = {"method": {}, "dataset": {}, "sampler": {}, "command": {}}


def _register(kind: str, name: str, family: str, help: str) -> Callable:
    def deco(obj):
        table = _TABLES[kind]
        if name in table and table[name].obj is not obj:
            raise RuntimeError(f"{kind} '{name}' registered twice")
        table[name] = Entry(name, family, help, obj)
        return obj
    return deco


def register_method(name: str, family: str, help: str) -> Callable:
    """Register a Method subclass (it must define a `Config` dataclass); sets `cls.method_name`."""
    def deco(cls):
        cls.method_name = name
        return _register("method", name, family, help)(cls)
    return deco


def register_dataset(name: str, family: str, help: str) -> Callable:
    """Register a loader `load(cfg: DataConfig) -> Dataset`."""
    return _register("dataset", name, family, help)


def register_sampler(name: str, family: str, help: str) -> Callable:
    return _register("sampler", name, family, help)


def register_command(name: str, family: str, help: str) -> Callable:
    """Register a CLI command: a function `configure(parser)` returning `run(args) -> int`.

    The function receives an argparse sub-parser to add its options to and returns the callable that
    executes the command; `deepatlas NAME ...` then dispatches to it."""
    return _register("command", name, family, help)


def load_all() -> None:
    for pkg in FAMILIES:
        importlib.import_module(pkg)


def table(kind: str) -> dict[str, Entry]:
    load_all()
    return _TABLES[kind]


def get(kind: str, name: str) -> Entry:
    entries = table(kind)
    if name not in entries:
        raise unknown(kind, name, entries)
    return entries[name]
