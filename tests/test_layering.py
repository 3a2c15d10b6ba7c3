"""The package depends downward only: nothing under jaxmlp/ imports `benchmarks`, which measures jaxmlp from a
clone and is not installed with it."""

import ast
import pathlib
import re

from tests.helpers import ROOT

PACKAGE = pathlib.Path(ROOT) / "jaxmlp"
BENCHMARKS = re.compile(r"^benchmarks(\.|$)")  # a module name: `benchmarks`, `benchmarks.throughput`, `benchmarks.`


def imports_of_benchmarks(source: str) -> list[str]:
    """Every way `source` names the benchmarks package as a module: `import`, `from ... import`, and any string
    that starts like its module name (what `importlib.import_module(f"benchmarks.{name}")` or `__import__` take;
    an f-string's literal head is such a string too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if BENCHMARKS.match(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and BENCHMARKS.match(node.module or ""):
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and BENCHMARKS.match(node.value):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_the_scan_finds_every_way_of_importing_benchmarks():
    sources = [
        "import benchmarks",
        "import benchmarks.throughput as t",
        "from benchmarks.common import machine",
        "import importlib\nimportlib.import_module('benchmarks.throughput')",
        "import importlib\nname = 'x'\nimportlib.import_module(f'benchmarks.{name}')",
        "__import__('benchmarks')",
    ]
    for source in sources:
        assert imports_of_benchmarks(source), source
    harmless = ['"""Public for `benchmarks/throughput.py`, which times this loop."""', "x = 'the benchmarks'"]
    assert [imports_of_benchmarks(s) for s in harmless] == [[], []]


def test_no_module_of_the_package_imports_benchmarks():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 15  # the whole package, sub-packages included
    found = {str(m.relative_to(ROOT)): imports_of_benchmarks(m.read_text()) for m in modules}
    assert {path: names for path, names in found.items() if names} == {}


def test_benchmarks_is_not_installed_with_the_package():
    import fnmatch

    pyproject = (pathlib.Path(ROOT) / "pyproject.toml").read_text()
    section = pyproject.split("[tool.setuptools.packages.find]", 1)[1].split("\n[", 1)[0]
    patterns = re.findall(r'"([^"]+)"', re.search(r"^include\s*=\s*\[(.*?)\]", section, re.M | re.S)[1])
    included = lambda name: any(fnmatch.fnmatch(name, p) for p in patterns)
    assert included("jaxmlp") and included("jaxmlp.show.studies") and included("tracer")
    assert not included("benchmarks") and not included("benchmarks.throughput"), patterns


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py (and tests/tracer_programs.py), fixtures in conftest.py."""
    found = {}
    for path in sorted(pathlib.Path(ROOT, "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:  # `from tests import test_x` too
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            bad = [n for n in names if re.match(r"tests\.(test_\w+|conftest)$", n)]
            if bad:
                found.setdefault(path.name, []).extend(bad)
    assert found == {}
