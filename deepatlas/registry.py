"""Names -> methods, datasets, samplers and commands. Each module registers what it defines with a
decorator; `load_all()` imports every module of the package (found by walking it, no hand-kept list),
so that a new file is seen by `deepatlas list` and the CLI as soon as it exists.

A method declares the datasets it accepts (`datasets = (...)` on the class); a dataset declares the
DataConfig fields its loader reads (`fields=(...)`), so that `train M --help` shows only those flags and
a flag the dataset would ignore is refused.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from deepatlas.errors import unknown

# Modules that are not imported by discovery: the entry point runs the CLI when imported.
NOT_DISCOVERED = ("deepatlas.__main__",)


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    help: str
    obj: Any
    fields: tuple[str, ...] = ()  # datasets: the DataConfig fields the loader reads


_TABLES: dict[str, dict[str, Entry]] = {"method": {}, "dataset": {}, "sampler": {}, "command": {}}
_LOADED = False


def _register(kind: str, name: str, family: str, help: str, fields: tuple[str, ...] = ()) -> Callable:
    def deco(obj):
        table = _TABLES[kind]
        if name in table and table[name].obj is not obj:
            raise RuntimeError(f"{kind} '{name}' registered twice")
        table[name] = Entry(name, family, help, obj, tuple(fields))
        return obj
    return deco


def register_method(name: str, family: str, help: str) -> Callable:
    """Register a Method subclass; it must define a `Config` dataclass and `datasets`, the names of the
    datasets it accepts (the first is its default unless its `defaults` say otherwise). Sets
    `cls.method_name`."""
    def deco(cls):
        if not isinstance(getattr(cls, "datasets", None), tuple) or not cls.datasets:
            raise RuntimeError(f"method '{name}' ({cls.__name__}) must declare `datasets = (...)`, the datasets it accepts")
        cls.method_name = name
        return _register("method", name, family, help)(cls)
    return deco


def register_dataset(name: str, family: str, help: str, *, fields: tuple[str, ...]) -> Callable:
    """Register a loader `load(cfg: DataConfig) -> Dataset` that reads only the DataConfig `fields` named
    (besides `name`); `deepatlas train` refuses a `--data-FIELD` flag the dataset does not read."""
    return _register("dataset", name, family, help, fields)


def register_sampler(name: str, family: str, help: str) -> Callable:
    return _register("sampler", name, family, help)


def register_command(name: str, family: str, help: str) -> Callable:
    """Register a CLI command: a function `configure(parser)` returning `run(args) -> int`.

    The function receives an argparse sub-parser to add its options to and returns the callable that
    executes the command; `deepatlas NAME ...` then dispatches to it."""
    return _register("command", name, family, help)


def modules() -> list[str]:
    """Every module of the deepatlas package, by name (those in NOT_DISCOVERED left out)."""
    import deepatlas

    return [m.name for m in pkgutil.walk_packages(deepatlas.__path__, "deepatlas.") if m.name not in NOT_DISCOVERED]


def load_all() -> None:
    """Import every module once, so that everything registered anywhere in the package is in the tables."""
    global _LOADED
    if not _LOADED:
        for name in modules():
            importlib.import_module(name)
        _LOADED = True


def table(kind: str) -> dict[str, Entry]:
    load_all()
    return _TABLES[kind]


def get(kind: str, name: str) -> Entry:
    entries = table(kind)
    if name not in entries:
        raise unknown(kind, name, entries)
    return entries[name]
