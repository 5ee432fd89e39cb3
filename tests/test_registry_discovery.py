"""Registration needs no hand-kept list: every module of the package is found by walking it, every
concrete Method subclass anywhere in the package is registered, and `deepatlas --help` lists every
command, registered or built in, on one line each."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from deepatlas import registry
from deepatlas.cli import COMMANDS, main
from deepatlas.method import Method

PACKAGE = Path(registry.__file__).parent
# Method subclasses that are tools of another part, not methods a user trains (with the reason)
NOT_USER_METHODS = {"deepatlas.eval.feature_classifier.FeatureClassifier": "FID's in-domain feature network, trained by eval/fid.py"}


def test_discovery_finds_every_module_file():
    files = {".".join(("deepatlas", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
             for p in PACKAGE.rglob("*.py")}
    assert set(registry.modules()) == files - set(registry.NOT_DISCOVERED) - {"deepatlas"}


def _method_classes() -> set[type]:
    found = set()
    for name in registry.modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Method) and obj is not Method and obj.__module__.startswith("deepatlas."):
                found.add(obj)
    return found


def _subclasses(cls: type) -> list[type]:
    return [c for c in cls.__subclasses__() if c.__module__.startswith("deepatlas.")]


def test_every_concrete_method_class_is_registered():
    """A leaf of the Method class tree (no subclasses in the package) is a method someone wrote to be
    trained; a base class (LanguageModel, Detector, ...) has subclasses. Every leaf must be registered."""
    registered = {e.obj for e in registry.table("method").values()}
    classes = _method_classes()
    assert len(classes) >= len(registered) > 20
    leaves = {c for c in classes if not _subclasses(c)}
    missing = sorted(n for n in (f"{c.__module__}.{c.__qualname__}" for c in leaves - registered)
                     if n not in NOT_USER_METHODS)
    assert not missing, f"Method subclasses not registered with register_method: {missing}"


def test_the_check_sees_an_unregistered_method():
    class Stray(Method):  # defined here, so it is not part of the package: the walk must find real ones
        pass
    assert Stray not in {e.obj for e in registry.table("method").values()}
    assert all(c.__module__.startswith("deepatlas.") for c in _method_classes())


def test_top_level_help_lists_every_command_on_one_line(capsys):
    with pytest.raises(SystemExit) as stop:  # argparse prints the help and exits
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    names = list(COMMANDS) + sorted(registry.table("command"))
    assert len(names) > len(COMMANDS)  # rf, report, generate, ... are registered
    for name in names:
        entry = registry.table("command").get(name)
        hits = [ln for ln in lines if ln.split()[:1] == [name] and len(ln.split()) > 1]
        assert len(hits) == 1, (name, hits)
        if entry is not None:
            assert hits[0].split(None, 1)[1] == entry.help  # the whole help, on that same line


def test_no_arguments_prints_the_same_listing(capsys):
    assert main([]) == 0
    assert "make-scenes" in capsys.readouterr().out
