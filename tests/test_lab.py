"""The Jupyter commands the README and the docs give work after `make setup`: every `jupyter SUBCOMMAND` they name
is installed (the `lab` extra), `make lab` opens JupyterLab on docs/notebooks/, and `jupyter nbconvert --execute`
runs notebook 01 in its QUICK setting without an error output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
JUPYTER = Path(sys.executable).parent / "jupyter"  # the environment's own, as `make setup` installs it
INSTALL = "install the lab extra: `pip install -e '.[lab]'` (make setup does)"
DOCS = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").glob("*.md"))]


def jupyter(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    assert JUPYTER.exists(), f"no {JUPYTER}: {INSTALL}"
    return subprocess.run([str(JUPYTER), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def subcommands() -> dict[str, str]:
    """Each `jupyter SUBCOMMAND` written in the README, the Makefile or a docs page, with the first file naming it."""
    found = {}
    for path in DOCS:
        for name in re.findall(r"\bjupyter (\w[\w-]*)", path.read_text()):
            found.setdefault(name, path.name)
    return found


def test_the_docs_name_jupyter_lab_and_nbconvert():
    assert {"lab", "nbconvert"} <= set(subcommands()), subcommands()


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_jupyter_command_the_docs_name_is_installed(name):
    """`jupyter NAME` runs the executable `jupyter-NAME` beside it (the slow tier runs nbconvert for real)."""
    assert (JUPYTER.parent / f"jupyter-{name}").exists(), f"`jupyter {name}` ({subcommands()[name]}): {INSTALL}"


def test_make_lab_opens_jupyterlab_on_the_notebooks():
    result = subprocess.run(
        ["make", "-n", "lab", f"VENV={sys.prefix}"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"/jupyter lab .*docs/notebooks", result.stdout), result.stdout


@pytest.mark.slow
def test_nbconvert_executes_notebook_01_in_quick_mode(tmp_path):
    source = ROOT / "docs" / "notebooks" / "01_plot_it_yourself.ipynb"
    path = os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))  # this checkout's jaxmlp first
    env = {**os.environ, "QUICK": "1", "PYTHONPATH": path}
    command = ["nbconvert", "--to", "notebook", "--execute", str(source), "--output-dir", str(tmp_path)]
    result = jupyter(*command, "--ExecutePreprocessor.timeout=900", env=env, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    run = nbformat.read(tmp_path / source.name, as_version=4)
    outputs = [o for cell in run.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "QUICK=True: 3 epochs" in texts  # the short setting, not the committed full run
    assert all(cell.get("execution_count") for cell in run.cells if cell.cell_type == "code" and cell.source.strip())
