"""The folders of jaxmlp/ show its plan, and its imports follow it.

From the bottom up: the shared vocabulary (`names`, `errors`, `config` with its `recipes/`, `files`); the ML core
(`core/`) and the data (`data/`), each importing only the vocabulary; runs on disk (`runs/`), which may import
the core and data; presentation (`show/`), which may import all of those; the command line (`cli`, `__main__`) on
top. Every import counts, inside functions too, and so does a module named in a string (`importlib.import_module`,
`importlib.resources.files`).
"""

import ast
import pathlib
import re

import pytest

from tests.helpers import ROOT, function_lengths, module_references

PACKAGE = pathlib.Path(ROOT) / "jaxmlp"
SUBPACKAGES = ("core", "data", "runs", "show")
BOTTOM = ("__init__", "names", "errors", "config", "files", "recipes")  # the package's own __init__ is bottom too
TOP = ("cli", "__main__")
TOP_LEVEL_FILES = {f"{name}.py" for name in BOTTOM + TOP if name != "recipes"}
MAY_IMPORT = {
    "bottom": {"bottom"},
    "core": {"bottom", "core"},
    "data": {"bottom", "data"},
    "runs": {"bottom", "core", "data", "runs"},
    "show": {"bottom", "core", "data", "runs", "show"},
    "top": {"bottom", "core", "data", "runs", "show", "top"},
}
MODULE_NAME = re.compile(r"^jaxmlp(\.[A-Za-z_]\w*)*\.?$")  # a whole string that names a jaxmlp module


def layer(parts: tuple[str, ...]) -> str:
    """The layer of a module given by its path under jaxmlp/ (`("core", "train")`), or of an imported name."""
    if not parts:
        return "bottom"  # `import jaxmlp`
    if parts[0] in SUBPACKAGES:
        return parts[0]
    if parts[0] in TOP:
        return "top"
    if parts[0] in BOTTOM or not (PACKAGE / f"{parts[0]}.py").exists():
        return "bottom"  # a name defined in jaxmlp/__init__.py, such as `__version__`
    raise AssertionError(f"jaxmlp.{parts[0]} belongs to no layer")


def upward_imports(source: str, parts: tuple[str, ...]) -> list[str]:
    """The imports of the module at `parts` (its path under jaxmlp/, no `.py`) that its layer may not make."""
    own = layer(parts)
    names = [
        (line, name)
        for line, name in module_references(source, MODULE_NAME, ("jaxmlp", *parts[:-1]))
        if name == "jaxmlp" or name.startswith("jaxmlp.")
    ]
    return [
        f"line {line}: {own} imports {name} ({layer(tuple(name.split('.')[1:]))})"
        for line, name in names
        if layer(tuple(name.split(".")[1:])) not in MAY_IMPORT[own]
    ]


def modules() -> dict[tuple[str, ...], pathlib.Path]:
    return {path.relative_to(PACKAGE).with_suffix("").parts: path for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_lives_in_a_subpackage_or_is_a_listed_top_level_file():
    for name in SUBPACKAGES:
        init = PACKAGE / name / "__init__.py"
        body = ast.parse(init.read_text()).body
        assert ast.get_docstring(ast.Module(body, [])) and len(body) == 1, f"{init}: a docstring and nothing else"
    stray = [
        "/".join(parts)
        for parts in modules()
        if parts[0] not in SUBPACKAGES and f"{parts[0]}.py" not in TOP_LEVEL_FILES and parts[0] != "recipes"
    ]
    assert stray == []
    assert {p.name for p in PACKAGE.glob("*.py")} == TOP_LEVEL_FILES


def test_every_import_goes_down_the_layers():
    found = {"/".join(parts): upward_imports(path.read_text(), parts) for parts, path in modules().items()}
    assert len(found) > 15
    assert {module: bad for module, bad in found.items() if bad} == {}


@pytest.mark.parametrize(
    "parts, source",
    [
        (("core", "train"), "from jaxmlp.data.datasets import Dataset"),  # core and data are siblings
        (("data", "datasets"), "def f():\n    from jaxmlp.core import model"),  # inside a function
        (("runs", "loop"), "import jaxmlp.show.plots as plots"),
        (("runs", "loop"), "from ..show import plots"),  # relative
        (("show", "plots"), "from jaxmlp import cli"),
        (("config",), "from jaxmlp.runs.lifecycle import RunDir"),
        (("files",), "from importlib import resources\nresources.files('jaxmlp.data')"),
        (("runs", "evaluate"), "import importlib\nname = 'x'\nimportlib.import_module(f'jaxmlp.show.studies.{name}')"),
    ],
)
def test_the_check_catches_a_planted_upward_import(parts, source):
    assert upward_imports(source, parts), source


@pytest.mark.parametrize(
    "parts, source",
    [
        (("runs", "loop"), "from jaxmlp.core.train import init\nfrom jaxmlp.data import datasets"),
        (("show", "figures"), "from . import plots\nfrom ..runs.evaluate import Report"),
        (("core", "train"), "from jaxmlp.config import TrainConfig\nfrom jaxmlp import __version__"),
        (("cli",), "from jaxmlp.show.figures import write_run_figures"),
        (("data", "idx"), '"""Reads IDX files for `jaxmlp.data.datasets` (see also jaxmlp.show.plots)."""'),
    ],
)
def test_the_check_lets_downward_imports_pass(parts, source):
    assert upward_imports(source, parts) == []


def test_no_function_over_60_lines():
    """Short enough to read at once, as tracer's are (tests/test_tracer_layout.py)."""
    lengths = function_lengths(PACKAGE)
    assert len(lengths) > 300  # every function of jaxmlp's was seen
    assert {name: n for name, n in lengths.items() if n > 60} == {}
