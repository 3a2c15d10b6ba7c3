"""The notebooks in docs/notebooks/: each committed .ipynb is its MyST source executed in full, without errors;
notebook 1 meets its bars; and `docs/run_notebooks.py` fails on a cell error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("[0-9][0-9]_*.md"))
IDS = [p.stem for p in NOTEBOOKS]


def executed(source: Path):
    return nbformat.read(source.with_suffix(".ipynb"), as_version=4)


def code_cells(notebook) -> list:
    return [c for c in notebook.cells if c.cell_type == "code"]


def figures(notebook) -> int:
    outputs = [o for c in code_cells(notebook) for o in c.outputs]
    return sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outputs)


def check_cells(notebook) -> int:
    """A check cell is a code cell that calls `check(`."""
    return sum("check(" in c.source for c in code_cells(notebook))


def test_the_notebook_folder_holds_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_plot_it_yourself.md"]


@pytest.mark.parametrize("source", NOTEBOOKS, ids=IDS)
def test_committed_ipynb_is_the_source_executed_in_full(source):
    """Same cells as the .md (run `make notebooks` after editing one), every code cell run, in the full setting."""
    assert source.with_suffix(".ipynb").is_file(), f"run `make notebooks` to write {source.stem}.ipynb"
    text, run = jupytext.read(source), executed(source)
    assert [(c.cell_type, c.source) for c in run.cells] == [(c.cell_type, c.source) for c in text.cells], (
        f"{source.stem}.ipynb is older than its .md: run `make notebooks`"
    )
    assert run.metadata.get("jaxmlp", {}).get("quick", False) is False  # not a QUICK run
    assert all(c.execution_count is not None for c in code_cells(run))


@pytest.mark.parametrize("source", NOTEBOOKS, ids=IDS)
def test_executed_notebook_has_no_error_output_and_has_exercises(source):
    run = executed(source)
    errors = [o for c in code_cells(run) for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert check_cells(run) >= 1 and figures(run) >= 1


def test_plot_it_yourself_meets_its_bars():
    source = NOTEBOOKS[0]
    run = executed(source)
    assert figures(run) >= 4 and check_cells(run) >= 3
    assert "you will be able to" in run.cells[0].source  # it opens with what the learner will be able to do
    last_check, last = code_cells(run)[-2:]  # the no-JAX check, then its reveal()
    assert 'assert "jax" not in sys.modules' in last_check.source and "check(" in last_check.source
    assert last.source == "reveal()"
    assert "import jax\n" not in jupytext.writes(jupytext.read(source), "py:percent")


def run_notebooks(tmp_path, body: str) -> subprocess.CompletedProcess:
    source = tmp_path / "99_tiny.md"
    source.write_text("---\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n# Tiny\n\n" + body)
    command = [sys.executable, str(ROOT / "docs" / "run_notebooks.py"), "--quick", "--out", str(tmp_path / "out")]
    return subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=300)


def test_run_notebooks_executes_in_quick_mode_and_records_the_time(tmp_path):
    body = "```{code-cell} ipython3\nfrom jaxmlp.show.notebook import QUICK\nprint('QUICK is', QUICK)\n```\n"
    result = run_notebooks(tmp_path, body)
    assert result.returncode == 0, result.stderr
    run = nbformat.read(tmp_path / "out" / "99_tiny.ipynb", as_version=4)
    assert run.cells[1].outputs[0].text == "QUICK is True\n"
    assert run.metadata["jaxmlp"]["quick"] is True and run.metadata["jaxmlp"]["seconds"] >= 0
    assert json.loads((tmp_path / "out" / "timings-quick.json").read_text()) == {
        "99_tiny.md": run.metadata["jaxmlp"]["seconds"]
    }


def test_run_notebooks_fails_on_a_cell_error_and_writes_nothing(tmp_path):
    body = "```{code-cell} ipython3\n1 / 0\n```\n\n```{code-cell} ipython3\nprint('never')\n```\n"
    result = run_notebooks(tmp_path, body)
    assert result.returncode == 1
    assert "error: 99_tiny.md failed in a cell" in result.stderr and "ZeroDivisionError" in result.stderr
    assert not (tmp_path / "out" / "99_tiny.ipynb").exists()
