"""tracer stays meant to be read: no file over 400 lines and no function over 60; its global state and its speed
paths each in a module that imports nothing else of tracer's; and the op families layered, each importing (at
module level) only the families above it in `tracer/ops.py`'s reading order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import function_lengths

TRACER = Path(__file__).resolve().parent.parent / "tracer"
FILES = sorted(TRACER.rglob("*.py"))
FAMILIES = ["recording", "reductions", "pointwise", "shape_ops", "linalg", "nn_ops", "inplace_ops", "indexing"]


def tracer_modules(nodes) -> set[str]:
    """The tracer modules the import statements among `nodes` name (`from tracer import x` names `tracer.x`)."""
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tracer":
            found |= {f"tracer.{a.name}" for a in node.names} if node.module == "tracer" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "tracer"}
    return found


def test_the_layout_sees_tracers_files():
    assert {"state.py", "fast_paths.py", "graph.py", "engine.py", "ops.py"} <= {p.name for p in FILES}
    assert all((TRACER / f"{family}.py").is_file() for family in FAMILIES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(TRACER)) for p in FILES])
def test_no_file_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_no_function_over_60_lines():
    lengths = function_lengths(TRACER)
    assert len(lengths) > 300  # every function of tracer's was seen
    assert {name: n for name, n in lengths.items() if n > 60} == {}


@pytest.mark.parametrize("name", ["state.py", "fast_paths.py"])
def test_state_and_speed_paths_import_nothing_else_of_tracers(name):
    """Not even inside a function: they are the ground the other modules stand on."""
    assert tracer_modules(ast.walk(ast.parse((TRACER / name).read_text()))) == set()


@pytest.mark.parametrize("index", range(len(FAMILIES)), ids=FAMILIES)
def test_op_families_import_only_the_families_above_them(index):
    top_level = ast.parse((TRACER / f"{FAMILIES[index]}.py").read_text()).body
    imported = {m.removeprefix("tracer.") for m in tracer_modules(top_level)}
    assert imported & set(FAMILIES) <= set(FAMILIES[:index])
    assert "ops" not in imported  # ops.py gathers the families; none of them goes back up to it
