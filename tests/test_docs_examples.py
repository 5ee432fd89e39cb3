"""The Python examples of docs/python-api.md run as written: every ```python block, in order, in one
namespace (like the cells of a notebook), in an empty temporary folder. A block that raises fails the
test and names the block; the examples end in asserts, so an example that runs but computes the wrong
thing fails too."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def blocks(text: str) -> list[tuple[str, str]]:
    """(heading above the block, code) for every ```python block."""
    out, heading = [], "top"
    for part in re.split(r"(^```python\n.*?^```$)", text, flags=re.S | re.M):
        if part.startswith("```python"):
            out.append((heading, part.split("\n", 1)[1].rsplit("```", 1)[0]))
        else:
            heads = re.findall(r"^#+ (.+)$", part, flags=re.M)
            heading = heads[-1] if heads else heading
    return out


def test_the_doc_has_examples():
    assert len(blocks(DOC.read_text())) >= 4


def test_every_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, (heading, code) in enumerate(blocks(DOC.read_text())):
        try:
            exec(compile(code, f"{DOC.name} block {i} ({heading})", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - reported with the block it came from
            pytest.fail(f"docs/python-api.md, block {i} under '{heading}' raised {type(e).__name__}: {e}")
