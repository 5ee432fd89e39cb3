"""docs/architecture.md's rule, checked over the whole package: a class that methods derive from lives in
a file named for it, and a file that registers a method holds no math of its own (no public function or
helper class beside its Method subclasses and their config dataclasses; the math is in its own file)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
import types

from test_registry_discovery import _method_classes

from deepatlas import registry
from deepatlas.method import Method


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def misplaced_math(module: types.ModuleType) -> list[str]:
    """Public functions and classes defined in `module` that are neither Method subclasses nor config dataclasses."""
    out = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj) and (issubclass(obj, Method) or (dataclasses.is_dataclass(obj) and name.endswith("Config"))):
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            out.append(name)
    return out


def test_a_class_that_methods_derive_from_lives_in_a_file_named_for_it():
    bases = {c for c in _method_classes() if any(s.__module__.startswith("deepatlas.") for s in c.__subclasses__())}
    assert len(bases) >= 8  # LanguageModel, Detector, EncoderMethod, Diffusion, FlowMethod, SEDD, ...
    wrong = sorted(f"{c.__module__}.{c.__name__}" for c in bases if c.__module__.rsplit(".", 1)[1] != snake(c.__name__))
    assert not wrong, f"base classes in a file not named for them (snake_case of the class): {wrong}"


def test_method_files_hold_no_math_of_their_own():
    modules = {importlib.import_module(e.obj.__module__) for e in registry.table("method").values()}
    assert len(modules) > 15
    found = {m.__name__: misplaced_math(m) for m in modules}
    found = {k: v for k, v in found.items() if v}
    assert not found, f"move these to a math file of their own (docs/architecture.md): {found}"


def test_the_check_sees_math_beside_a_method(monkeypatch):
    fake = types.ModuleType("deepatlas.fake_method")
    monkeypatch.setitem(sys.modules, fake.__name__, fake)  # dataclasses looks its module up there
    exec("import dataclasses\n"
         "def focal(x): return x\n"
         "class Helper: pass\n"
         "@dataclasses.dataclass\nclass ToyConfig:\n    a: int = 1\n"
         "def _private(): pass\n", fake.__dict__)
    assert misplaced_math(fake) == ["focal", "Helper"]
    assert snake("MaskedDiffusionLM") == "masked_diffusion_lm" and snake("SEDD") == "sedd"
