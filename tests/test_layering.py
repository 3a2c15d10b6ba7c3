"""The package depends downward only: nothing under jaxmlp/ imports `benchmarks`, which measures jaxmlp from a
clone and is not installed with it."""

import pathlib
import re

from tests.helpers import ROOT, module_references

PACKAGE = pathlib.Path(ROOT) / "jaxmlp"
BENCHMARKS = re.compile(r"^benchmarks(\.|$)")  # a module name: `benchmarks`, `benchmarks.throughput`, `benchmarks.`


def imports_of_benchmarks(source: str) -> list[str]:
    """Every way `source` names the benchmarks package as a module: `import`, `from ... import`, and any string
    that starts like its module name (what `importlib.import_module(f"benchmarks.{name}")` or `__import__` take;
    an f-string's literal head is such a string too)."""
    return [f"line {line}: {name}" for line, name in module_references(source, BENCHMARKS) if BENCHMARKS.match(name)]


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
    test_module = re.compile(r"tests\.(test_\w+|conftest)(\.|$)")  # `tests.test_x`, `tests.test_x.helper`
    found = {}
    for path in sorted(pathlib.Path(ROOT, "tests").glob("*.py")):
        names = module_references(path.read_text(), package=("tests",))  # imports only, not strings
        bad = [name for _, name in names if test_module.match(name)]
        if bad:
            found[path.name] = bad
    assert found == {}
