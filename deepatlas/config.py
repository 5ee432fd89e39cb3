"""Typed configs: dataclasses whose fields carry their CLI help, saved as JSON next to the weights.

`option(default, "help")` declares a field; `add_arguments` maps a dataclass onto argparse flags
(`batch_size` -> `--batch-size`); `from_args` and `from_dict` build the dataclass back, checking types.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from collections.abc import Collection
from typing import Any

from deepatlas.errors import UserError


def option(default: Any, help: str, *, choices: tuple | None = None, low: float | None = None,
           high: float | None = None) -> Any:
    """A config field with its help text, optional choices and an allowed numeric range [low, high]."""
    meta = {"help": help, "choices": choices, "low": low, "high": high}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def _hints(cls) -> dict[str, Any]:
    """The class's evaluated annotations (get_type_hints re-parses them on every call: ~10 µs a class)."""
    return typing.get_type_hints(cls)


def _field_type(cls, f: dataclasses.Field) -> type:
    hint = _hints(cls)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        hint = args[0]
    return hint


def _flag(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def show_default(value: Any) -> str:
    """A default as `--help` prints it: as it is typed on the command line (`1 2 2` for a tuple)."""
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return "''" if value == "" else str(value)


def add_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "", title: str | None = None, *,
                  defaults: dict[str, Any] | None = None, shown: Collection[str] | None = None,
                  skip: Collection[str] = ()) -> None:
    """Add one `--flag` per dataclass field; defaults are left unset so that saved configs can fill them.

    `defaults` are the values the help text prints (a method's own defaults; the dataclass's where absent),
    `shown` the fields listed in the help (the others are still parsed, so that they can be refused with
    a reason), `skip` fields that get no flag here."""
    group = parser.add_argument_group(title or cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        typ = _field_type(cls, f)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        default = (defaults or {}).get(f.name, default)
        meta = f.metadata
        text = f"{meta.get('help', '')} (default: {show_default(default)})".replace("%", "%%")  # argparse formats help with %
        if shown is not None and f.name not in shown:
            text = argparse.SUPPRESS
        kwargs: dict[str, Any] = dict(dest=prefix + f.name, default=argparse.SUPPRESS, help=text)
        if typ is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(typ) in (list, tuple):
            inner = (typing.get_args(typ) or (str,))[0]
            kwargs.update(type=inner, nargs="+", metavar=inner.__name__.upper())
        else:
            kwargs.update(type=typ, metavar=typ.__name__.upper())
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
        group.add_argument(_flag(prefix, f.name), **kwargs)


def _fits(value: Any, typ: Any) -> bool:
    """Whether a (JSON or argparse) value has the field's type; unknown annotations are not checked."""
    if typ is bool:
        return isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is str:
        return isinstance(value, str)
    if typ in (list, tuple) or typing.get_origin(typ) in (list, tuple):
        return isinstance(value, (list, tuple))
    return True


def check(cfg: Any, prefix: str = "") -> Any:
    """Raise a UserError naming the flag when a value has the wrong type, is not finite, or is outside
    its declared range or choices. `prefix` is the flag prefix (`train_` -> `--train-steps`)."""
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        low, high, choices = f.metadata.get("low"), f.metadata.get("high"), f.metadata.get("choices")
        flag = _flag(prefix, f.name)
        optional = type(None) in typing.get_args(hints[f.name])
        if not (value is None and optional) and not _fits(value, _field_type(type(cfg), f)):
            raise UserError(f"{flag} must be of type {getattr(_field_type(type(cfg), f), '__name__', '?')}, got {value!r}")
        if choices and value not in choices:
            raise UserError(f"{flag} must be one of {', '.join(map(str, choices))}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value != value or value in (float("inf"), float("-inf")):
                raise UserError(f"{flag} must be a finite number, got {value}")
            if low is not None and value < low:
                raise UserError(f"{flag} must be >= {low}, got {value}")
            if high is not None and value > high:
                raise UserError(f"{flag} must be <= {high}, got {value}")
    return cfg


def from_dict(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build `cls` from a JSON dict; unknown keys are an error (they mean a foreign or newer config)."""
    if not isinstance(values, dict):
        raise UserError(f"config for {cls.__name__} must be a JSON object, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(values) - names
    if extra:
        raise UserError(f"config for {cls.__name__} has unknown fields {sorted(extra)}; was it written by another version?")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            v = values[f.name]
            typ = _field_type(cls, f)
            kwargs[f.name] = tuple(v) if isinstance(v, list) and (typ is tuple or typing.get_origin(typ) is tuple) else v
    return check(cls(**kwargs), prefix)


def from_args(cls: type, args: argparse.Namespace, prefix: str = "", base: dict | None = None) -> Any:
    """Build `cls` from parsed flags, starting from `base` (a saved config) where flags are absent."""
    values = dict(base or {})
    for f in dataclasses.fields(cls):
        if hasattr(args, prefix + f.name):
            values[f.name] = getattr(args, prefix + f.name)
    return from_dict(cls, values, prefix)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of fields whose values differ between two config dicts."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
